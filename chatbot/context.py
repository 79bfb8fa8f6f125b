"""One user's next request: the token budget applied to their window and summary, checked
against the server's own count where it can tell it, fitted to what the server says when it
refuses a request as too long; the usage to store with a reply; and the summary folded forward
once a reply is stored."""

from __future__ import annotations

import contextlib
import dataclasses
import math
from dataclasses import dataclass

from chatbot.admission import Admission
from chatbot.budget import (
    ESTIMATE_MARGIN,
    PlannedRequest,
    TokenBudget,
    plan_request,
    shrink_to_fit,
    with_memories,
    with_recalled,
)
from chatbot.llm import ChatModel, ContextOverflow, ModelError, Provider, Reply, tokens_spent
from chatbot.server_tokens import ServerTokenCounter
from chatbot.summary import extractive_summary, summary_request
from memory import MAX_WINDOW, ChatMemory, ChatMemoryError, ContextWindow, Message, Role, Usage
from memory.memories import Memories, MemoryRecord
from memory.recall import Recall, RecallResult
from memory.summary import Summary, SummaryState, SummaryStore

SUMMARY_MAX_TOKENS = 400
FOLD_LIMIT = 100  # messages folded per turn at most (a summary turned on late starts there)
SUMMARY_REQUESTS_PER_TURN = 2  # summary requests one turn may make; the rest waits


@dataclass(frozen=True)
class ContextBuilder:
    memory: ChatMemory
    summaries: SummaryStore
    budget: TokenBudget
    model: ChatModel
    admission: Admission  # every summary request is admitted and counted by the user's limits
    recall: Recall | None = None  # None: no recall at all (the setting is then moot)
    recall_max_tokens: int = 1000  # RECALL_MAX_TOKENS
    server_tokens: ServerTokenCounter | None = None  # the server's own count, where it has one
    memories: Memories | None = None  # None: no memories at all
    memory_max_tokens: int = 300  # MEMORY_MAX_TOKENS

    @property
    def estimated(self) -> bool:
        """The app's counts are estimates: its encoding is a fallback for this model."""
        return self.memory.token_counter.estimated

    @property
    def summary_limit(self) -> int:
        return min(SUMMARY_MAX_TOKENS, self.budget.prompt_limit // 4)

    def plan(
        self,
        window: ContextWindow,
        state: SummaryState,
        recalled: RecallResult | None = None,
        memories: tuple[MemoryRecord, ...] = (),
    ) -> PlannedRequest:
        """The request for `window`: the summary when on, the `memories` that fit right after
        the instruction, then what of `recalled` fits."""
        summary = state.checkpoint if state.enabled else None
        margin = self._margin(window)
        counter = self.memory.token_counter
        strict = self.model.config.strict_roles
        plan = plan_request(window, self.budget, counter, summary, margin, strict)
        if memories:
            plan = with_memories(
                plan, memories, self.budget, counter, instruction=window.system.text,
                max_tokens=self.memory_allowance, margin=margin,
            )  # fmt: skip
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

    @property
    def memory_allowance(self) -> int:
        """Tokens memories may add to a request: MEMORY_MAX_TOKENS, at most an eighth of the
        prompt's room (reserved at admission like the recall allowance)."""
        if self.memories is None:
            return 0
        return min(self.memory_max_tokens, self.budget.prompt_limit // 8)

    @property
    def added_allowance(self) -> int:
        """What a turn's request may add after admission: recalled messages and memories."""
        return self.recall_allowance + self.memory_allowance

    def request_for(
        self, user_id: str, conversation_id: str, window: ContextWindow, state: SummaryState
    ) -> PlannedRequest:
        """The request a turn sends for `window` (from begin_turn, or read now): the
        summary when on, the user's memories relevant to its newest prompt, and the earlier
        messages recalled for it."""
        recalled = self.recall_for(user_id, conversation_id, window)
        return self.plan(window, state, recalled, self.memories_for(user_id, window))

    def memories_for(self, user_id: str, window: ContextWindow) -> tuple[MemoryRecord, ...]:
        """The user's memories relevant to the window's newest prompt (none with memory off,
        or when storage cannot say: the request goes without them)."""
        prompts = [m for m in window.messages if m.role is Role.USER]
        if self.memories is None or not prompts:
            return ()
        try:
            return tuple(self.memories.relevant(user_id, prompts[-1].content))
        except ChatMemoryError:
            return ()

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

    def request_to_send(
        self, user_id: str, conversation_id: str, window_size: int
    ) -> PlannedRequest:
        """The next request, checked against the server's own count where it can tell it
        (chatbot.server_tokens): that count is kept with it (usage, drift), and when it leaves
        no room for the reply the window is shrunk to fit first. Otherwise `next_request`."""
        window = self.memory.context_window(user_id, conversation_id, window_size)
        state = self.summaries.state(user_id, conversation_id)
        return self.sendable(user_id, conversation_id, window, state)

    def sendable(
        self, user_id: str, conversation_id: str, window: ContextWindow, state: SummaryState
    ) -> PlannedRequest:
        """`request_to_send` for a window already read (a begun turn's)."""
        request = self.request_for(user_id, conversation_id, window, state)
        counted = self._server_count(request)
        if counted is not None and counted > self.budget.prompt_limit:
            room = self.budget.prompt_limit * request.token_count / counted
            request = self._shrunk(window, state, math.floor(room))
            counted = self._server_count(request)
        if request.memories and self.memories is not None:
            with contextlib.suppress(ChatMemoryError):  # "last used" is a note, not the turn
                self.memories.mark_used(user_id, [m.id for m in request.memories])
        return dataclasses.replace(request, server_token_count=counted)

    def fit(
        self,
        user_id: str,
        conversation_id: str,
        window_size: int,
        refused: PlannedRequest,
        overflow: ContextOverflow,
    ) -> PlannedRequest | None:
        """After the server refused `refused` as longer than its context: the longest window
        that fits what it said (its context size, its count of the prompt), or, when it said
        nothing, one a quarter smaller. None when nothing smaller can be sent: not even the
        last prompt fits (then `overflow.advice(has_history=False)`, never "lower the history
        length")."""
        window = self.memory.context_window(user_id, conversation_id, window_size)
        state = self.summaries.state(user_id, conversation_id)
        room = min(self._room_after(refused, overflow), refused.token_count - 1)
        smaller = self._shrunk(window, state, room)
        if not smaller.messages or len(smaller.messages) >= len(refused.messages):
            return None
        return dataclasses.replace(smaller, server_token_count=self._server_count(smaller))

    def _room_after(self, refused: PlannedRequest, overflow: ContextOverflow) -> int:
        """How big (in the app's count) a request may be, by what the server said."""
        context = overflow.context_tokens
        server_room = context - self.budget.reply_tokens if context else self.budget.prompt_limit
        said = overflow.prompt_tokens or refused.server_token_count
        if said:  # its count of the refused request: scale its room into the app's count
            return math.floor(server_room * refused.token_count / said * 0.98)
        if context:
            return math.floor(server_room / (ESTIMATE_MARGIN if self.estimated else 1.0))
        return refused.token_count * 3 // 4

    def _shrunk(self, window: ContextWindow, state: SummaryState, room: int) -> PlannedRequest:
        summary = state.checkpoint if state.enabled else None
        counter, strict = self.memory.token_counter, self.model.config.strict_roles
        return shrink_to_fit(window, self.budget, counter, summary, room, strict)

    def _server_count(self, request: PlannedRequest) -> int | None:
        if self.server_tokens is None or not request.messages:
            return None
        return self.server_tokens.count_request(request.as_openai())

    def usage_of(self, reply: Reply, request: PlannedRequest) -> Usage | None:
        """Reported usage with the app's own prompt estimate beside it; the server's own
        count (chatbot.server_tokens) when it reported no usage but can count; the estimate
        alone, flagged, when neither; None offline."""
        if reply.usage is not None:
            return dataclasses.replace(
                reply.usage, estimated_prompt_tokens=request.token_count, cut_off=reply.cut_off
            )
        if self.model.config.provider is Provider.OFFLINE:
            return None
        counted = self._counted_usage(reply, request)
        if counted is not None:
            return counted
        return Usage(
            prompt_tokens=request.token_count,
            completion_tokens=self.memory.token_counter.count_text(reply.text),
            estimated=True,
            cut_off=reply.cut_off,
        )

    def _counted_usage(self, reply: Reply, request: PlannedRequest) -> Usage | None:
        """Usage as the server counts it, asked after the reply: exact, so the drift it shows
        against the app's estimate calibrates the next requests (`_margin`)."""
        if self.server_tokens is None or request.server_token_count is None:
            return None
        completion = self.server_tokens.count_text(reply.text) if reply.text else 0
        if completion is None:
            return None
        return Usage(
            prompt_tokens=request.server_token_count,
            completion_tokens=completion,
            estimated_prompt_tokens=request.token_count,
            cut_off=reply.cut_off,
        )

    def tokens_spent(self, reply: Reply | None, request: PlannedRequest) -> int:
        """What a reply request cost, for the user's limits, whether it completed or failed
        part way (content filter, dropped stream): see chatbot.llm.tokens_spent. `reply`:
        None when the request never got an answer started."""
        prompt = request.server_token_count or request.token_count
        return tokens_spent(reply, prompt, self.memory.token_counter)

    def fold_summary(self, user_id: str, conversation_id: str, window_size: int) -> str | None:
        """With the summary on, fold the messages that left the conversation's next request
        into its summary. Called after a reply is stored. Each summary request is a model
        request of the user's, admitted and counted by their limits; at most
        SUMMARY_REQUESTS_PER_TURN are made (the rest waits for the next turn). A refusal or
        failure leaves the summary as far as it got. Returns what went wrong, if anything."""
        state = self.summaries.state(user_id, conversation_id)
        if not state.enabled:
            return None
        older = self._unsummarized(user_id, conversation_id, window_size, state)
        if not older:
            return None
        previous = state.checkpoint.text if state.checkpoint else None
        covered = state.checkpoint.covers_seq if state.checkpoint else 0
        ttl = self.memory.retention(user_id).ttl_seconds
        for batch in self._batches(older)[:SUMMARY_REQUESTS_PER_TURN]:
            try:
                summary = self._summarize(user_id, previous, batch)
            except (ChatMemoryError, ModelError) as error:  # a limit refusing, included
                reach = f" (it covers messages up to #{covered})" if covered else ""
                return f"The summary was not brought up to date{reach}: {error}"
            self.summaries.save(user_id, conversation_id, summary, ttl)
            previous, covered = summary.text, summary.covers_seq
        return None

    def _unsummarized(
        self, user_id: str, conversation_id: str, window_size: int, state: SummaryState
    ) -> list[Message]:
        """The messages that left the next request and are not in the summary yet: one
        bounded read of the window and up to FOLD_LIMIT messages before it."""
        window = self.memory.context_window(user_id, conversation_id, window_size)
        request = self.plan(window, state)
        covered = state.checkpoint.covers_seq if state.checkpoint else 0
        first_sent = request.messages[0].seq if request.messages else None
        if first_sent is None or first_sent - 1 <= covered:
            return []
        reach_size = min(MAX_WINDOW, len(window.messages) + FOLD_LIMIT)
        reach = self.memory.context_window(user_id, conversation_id, reach_size)
        return [m for m in reach.messages if covered < m.seq < first_sent]

    def _summarize(self, user_id: str, previous: str | None, batch: list[Message]) -> Summary:
        counter = self.memory.token_counter
        if self.model.config.provider is Provider.OFFLINE:
            text = extractive_summary(previous, batch, counter, self.summary_limit)
            author = "extractive"
        else:
            text = self._model_summary(user_id, summary_request(previous, batch))
            author = self.model.config.model
        return Summary(text, batch[-1].seq, counter.count_text(text), author)

    def _model_summary(self, user_id: str, request: list[dict[str, str]]) -> str:
        """One summary request: admitted by the user's limits (raises LimitExceeded), then
        settled to what it cost, also when it fails part way."""
        counter = self.memory.token_counter
        prompt_tokens = counter.count_request(request)
        reservation = self.admission.admit(user_id, prompt_tokens + self.summary_limit)
        reply: Reply | None = None
        try:
            reply = self.model.stream(request, max_tokens=self.summary_limit)
            return "".join(reply).strip()
        finally:
            self.admission.settle(reservation, tokens_spent(reply, prompt_tokens, counter))

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
