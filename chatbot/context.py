"""One user's next request: the token budget applied to their window and summary, the usage
to store with a reply, and the summary folded forward once a reply is stored."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from chatbot.budget import (
    ESTIMATE_MARGIN,
    PlannedRequest,
    TokenBudget,
    plan_request,
    with_recalled,
)
from chatbot.llm import ChatModel, ModelError, Provider, Reply
from chatbot.summary import write_summary
from memory import MAX_WINDOW, ChatMemory, ContextWindow, Message, Role, Usage
from memory.recall import Recall, RecallResult
from memory.summary import Summary, SummaryState, SummaryStore

SUMMARY_MAX_TOKENS = 400
FOLD_LIMIT = 100  # messages folded per turn at most (a summary turned on late starts there)


@dataclass(frozen=True)
class ContextBuilder:
    memory: ChatMemory
    summaries: SummaryStore
    budget: TokenBudget
    model: ChatModel
    recall: Recall | None = None  # None: no recall at all (the setting is then moot)
    recall_max_tokens: int = 1000  # RECALL_MAX_TOKENS

    @property
    def estimated(self) -> bool:
        """The app's counts are estimates: its encoding is a fallback for this model."""
        return self.memory.token_counter.estimated

    @property
    def summary_limit(self) -> int:
        return min(SUMMARY_MAX_TOKENS, self.budget.prompt_limit // 4)

    def plan(
        self, window: ContextWindow, state: SummaryState, recalled: RecallResult | None = None
    ) -> PlannedRequest:
        """The request for `window`: the summary when on, then what of `recalled` fits."""
        summary = state.checkpoint if state.enabled else None
        margin = self._margin(window)
        counter = self.memory.token_counter
        plan = plan_request(window, self.budget, counter, summary, margin)
        if not recalled or not recalled.messages:
            return plan
        return with_recalled(
            plan,
            recalled.messages,
            self.budget,
            counter,
            max_tokens=self.recall_allowance,
            margin=margin,
        )

    @property
    def recall_allowance(self) -> int:
        """Tokens recalled messages may add to a request: RECALL_MAX_TOKENS, at most a quarter
        of the prompt's room. A turn admitted before its request is planned (begin_turn)
        reserves this on top of the reply's tokens, so the limits still hold exactly."""
        if self.recall is None:
            return 0
        return min(self.recall_max_tokens, self.budget.prompt_limit // 4)

    def request_for(
        self, user_id: str, conversation_id: str, window: ContextWindow, state: SummaryState
    ) -> PlannedRequest:
        """The request a turn sends for `window` (from begin_turn, or read now): the
        summary when on, and the earlier messages recalled for its newest prompt."""
        return self.plan(window, state, self.recall_for(user_id, conversation_id, window))

    def next_request(self, user_id: str, conversation_id: str, window_size: int) -> PlannedRequest:
        window = self.memory.context_window(user_id, conversation_id, window_size)
        state = self.summaries.state(user_id, conversation_id)
        return self.request_for(user_id, conversation_id, window, state)

    def recall_for(
        self, user_id: str, conversation_id: str, window: ContextWindow
    ) -> RecallResult | None:
        """The messages outside `window` most relevant to its newest prompt (None: recall
        is not configured, or there is no prompt)."""
        prompts = [m for m in window.messages if m.role is Role.USER]
        if self.recall is None or not prompts:
            return None
        return self.recall.find(
            user_id,
            conversation_id,
            prompts[-1].content,
            exclude_keys={m.key for m in window.messages},
        )

    def usage_of(self, reply: Reply, request: PlannedRequest) -> Usage | None:
        """Reported usage with the app's own prompt estimate beside it; the estimate alone,
        flagged, when the server reported nothing; None offline."""
        if reply.usage is not None:
            return dataclasses.replace(
                reply.usage, estimated_prompt_tokens=request.token_count, cut_off=reply.cut_off
            )
        if self.model.config.provider is Provider.OFFLINE:
            return None
        return Usage(
            prompt_tokens=request.token_count,
            completion_tokens=self.memory.token_counter.count_text(reply.text),
            estimated=True,
            cut_off=reply.cut_off,
        )

    def fold_summary(self, user_id: str, conversation_id: str, window_size: int) -> str | None:
        """With the summary on, fold the messages that left the conversation's next request
        into its summary. Called after a reply is stored. Returns what went wrong, if
        anything."""
        state = self.summaries.state(user_id, conversation_id)
        if not state.enabled:
            return None
        window = self.memory.context_window(user_id, conversation_id, window_size)
        request = self.plan(window, state)
        covered = state.checkpoint.covers_seq if state.checkpoint else 0
        first_sent = request.messages[0].seq if request.messages else None
        if first_sent is None or first_sent - 1 <= covered:
            return None
        # One bounded read: the window and up to FOLD_LIMIT messages before it.
        reach_size = min(MAX_WINDOW, len(window.messages) + FOLD_LIMIT)
        reach = self.memory.context_window(user_id, conversation_id, reach_size)
        older = [m for m in reach.messages if covered < m.seq < first_sent]
        if not older:
            return None
        previous = state.checkpoint.text if state.checkpoint else None
        counter = self.memory.token_counter
        ttl = self.memory.retention(user_id).ttl_seconds
        for batch in self._batches(older):
            try:
                text, author = write_summary(
                    self.model, counter, previous, batch, self.summary_limit
                )
            except ModelError as error:
                return f"The summary was not updated: {error}"
            summary = Summary(text, batch[-1].seq, counter.count_text(text), author)
            self.summaries.save(user_id, conversation_id, summary, ttl)
            previous = text
        return None

    def _batches(self, messages: list[Message]) -> list[list[Message]]:
        """Runs of messages small enough for one summary request (the previous summary, the
        instruction and the new summary's room included); an oversized message is cut."""
        room = self.budget.prompt_limit - 2 * self.summary_limit - 200
        batches: list[list[Message]] = [[]]
        used = 0
        for message in messages:
            if message.token_count > room:
                cut = message.content[: len(message.content) * room // message.token_count]
                message = dataclasses.replace(message, content=cut, token_count=room)
            if batches[-1] and used + message.token_count > room:
                batches.append([])
                used = 0
            batches[-1].append(message)
            used += message.token_count
        return batches

    def _margin(self, window: ContextWindow) -> float:
        """How much to scale the app's counts by: the last reported drift, if the server
        counted more, and a fixed margin when the encoding is a fallback."""
        margin = ESTIMATE_MARGIN if self.estimated else 1.0
        for message in reversed(window.messages):
            drift = message.usage.prompt_drift if message.usage else None
            if drift is not None:
                return max(margin, 1 + drift)
        return margin
