"""One chat turn, with no Streamlit: admit under the user's limits, store the prompt, build the
request, stream the reply, store it, settle, each step ending in a typed outcome.

    turn = ChatTurn(services, request, conversation)
    started = turn.start()            # Started, or Refused / Failed / OutcomeUnknown
    for chunk in turn.stream(): ...   # the reply as it arrives (a model failure ends it)
    outcome = turn.finish()           # Stored, Failed or OutcomeUnknown
    problem = turn.update_summary()   # after a stored reply only
    turn.stop()                       # instead of finish, when the reader goes away: Stopped
    turn.finish_stopped()             # instead of finish, on Stop: the partial reply stored

`abort()` (from any thread) hangs up on the model at once; the reading thread's stream ends.

The page only renders outcomes. Redis is two script calls a turn (titles and the summary
apart): `ChatMemory.begin_turn` (admit under the limits, remove what an edit or regenerate
replaces, store the prompt, read the request's window and summary) and
`ChatMemory.finish_turn` (store the reply, settle the reservation), each all or nothing and
exactly-once by its ids.

A prompt's id is fixed before the first attempt and kept with an unsent draft, so sending it
again after an unknown outcome can never store it twice. An edit or regenerate names what it
replaces (`replace_from`) and the newest message the page showed (`expect_last_seq`): when the
conversation has moved on since (another tab, a reply that arrived), nothing is removed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from chatbot.budget import PlannedRequest
from chatbot.conversation_list import awaits_title, title_after_first_reply
from chatbot.llm import TOO_LONG, ContextOverflow, ModelError, Reply
from chatbot.memory_proposals import propose_after_reply
from chatbot.prompt_check import keepable_text, prompt_refusal
from memory import (
    ChatMemoryError,
    Conversation,
    Message,
    Role,
    StorageUnavailable,
    TurnStart,
    Usage,
    WriteOutcomeUnknown,
    new_message_id,
)
from memory.limits import LimitExceeded

if TYPE_CHECKING:
    from chatbot.services import Services

# An over-long prompt is kept whole to edit when it is at most this many times the limit; a
# longer one keeps only what could be sent (a session never holds megabytes of draft).
DRAFT_KEEP_FACTOR = 2


@dataclass(frozen=True)
class Draft:
    """A prompt that was not stored (too long, refused, or storage down), kept to resend.

    `message_id` was fixed before the first attempt to store it, so sending it again can never
    store it twice; `outcome_unknown`: storage did not answer, so it may have been saved.
    `conversation_id`: where it was typed; it shows (and is sent) only there ("" where the
    page could not tell: it shows in any)."""

    user_id: str
    text: str
    message_id: str = field(default_factory=new_message_id)
    outcome_unknown: bool = False
    conversation_id: str = ""


@dataclass(frozen=True)
class TurnRequest:
    """What a user asked for: store `prompt` (None: answer the stored last prompt) and stream
    the reply. `replace_from`: an edit or regenerate replaces the messages from this seq on,
    only while the conversation's newest message is `expect_last_seq`; `keep_replaced` (an
    edit) keeps them as the earlier version of a branch (memory/branches.py)."""

    user_id: str
    prompt: str | None
    message_id: str | None = None  # a resent draft's id, so it is stored at most once
    replace_from: int | None = None
    expect_last_seq: int | None = None
    keep_replaced: bool = False  # an edit: what it replaces stays as the earlier version


@dataclass(frozen=True)
class Started:
    """Admitted, the prompt (if any) stored, the request built: the model is asked next."""


@dataclass(frozen=True)
class Refused:
    """Nothing was sent to the model and nothing removed; the prompt, if any, is kept."""

    reason: str
    draft: Draft | None = None


@dataclass(frozen=True)
class Failed:
    """The prompt is stored but has no reply (the model failed, or a limit refused the
    request, or the reply could not be stored); Retry can ask again. `location`: the model
    server's URL when it failed (for admins only; `reason` never names it)."""

    reason: str
    location: str | None = None


@dataclass(frozen=True)
class OutcomeUnknown:
    """Storage did not answer in time: the prompt (`draft`) or the reply may be saved."""

    reason: str
    draft: Draft | None = None


@dataclass(frozen=True)
class Stopped:
    """The reader went away mid-reply: nothing of it was stored."""

    produced: str


@dataclass(frozen=True)
class Stored:
    reply: Message


Outcome = Started | Refused | Failed | OutcomeUnknown | Stopped | Stored


def keepable(prompt: str, limit: int) -> str:
    """What of an unsent prompt the page keeps: all of it, unless far past the limit."""
    return prompt if len(prompt) <= DRAFT_KEEP_FACTOR * limit else prompt[:limit]


def storage_refusal(error: ChatMemoryError) -> str:
    if isinstance(error, WriteOutcomeUnknown):
        return (
            "Storage did not answer in time, so your message may not have been saved. It is "
            "kept below; sending it again cannot store it twice."
        )
    if isinstance(error, StorageUnavailable):
        return (
            "Storage is unavailable, so your message was NOT saved or sent. "
            "It is kept below: send it again when storage is back."
        )
    return f"Your message was NOT saved or sent: {error}"


def replace_refusal(error: ChatMemoryError) -> str:
    """Why an edit removed nothing (StaleTarget: the conversation changed since the page
    showed it; InvalidInput: more than a last exchange, a prompt no longer in the version
    shown, or too long a tail to keep as a version; each says nothing was changed)."""
    return f"{error} Your edited message was not sent; it is kept below."


def reply_refusal(error: ChatMemoryError) -> str:
    """Why no model request was made for a stored prompt (a retry or regenerate refused)."""
    return str(error) if isinstance(error, LimitExceeded) else f"No reply was requested: {error}"


def reply_not_stored(error: ChatMemoryError) -> Failed | OutcomeUnknown:
    if isinstance(error, WriteOutcomeUnknown):
        return OutcomeUnknown(
            "The reply arrived but storage did not answer in time: it may not have been saved."
        )
    if isinstance(error, StorageUnavailable):
        return Failed("The reply arrived but storage became unavailable, so it was not saved.")
    return Failed(f"The reply was not saved: {error}")


class ChatTurn:
    """One turn of `request.user_id` in the open `conversation` (as this page run read it: the
    title decision comes from it)."""

    def __init__(
        self, services: Services, request: TurnRequest, conversation: Conversation
    ) -> None:
        if request.prompt is not None and request.message_id is None:
            request = replace(request, message_id=new_message_id())  # fixed before any attempt
        self._services = services
        self._request = request
        self._conversation = conversation
        self._needs_title = awaits_title(conversation)
        self._start: TurnStart | None = None  # begun: settle it once, whatever happens
        self._planned: PlannedRequest | None = None
        self._reply: Reply | None = None
        self._chunks: Generator[str, None, None] | None = None
        self._failure: str | None = None
        self._location: str | None = None  # the model server's, when it failed
        self.prompt_stored = False  # this turn's prompt is in the conversation now
        self._summary_on = False

    @property
    def user_id(self) -> str:
        return self._request.user_id

    @property
    def conversation_id(self) -> str:
        return self._conversation.conversation_id

    @property
    def planned(self) -> PlannedRequest | None:
        """The request sent (or about to be): what it recalled and the memories it carried
        are what the page says were used. None before a successful start()."""
        return self._planned

    def draft(self) -> Draft | None:
        """The turn's prompt as a draft to keep, with its id."""
        prompt, message_id = self._request.prompt, self._request.message_id
        if prompt is None or message_id is None:
            return None
        text = keepable(keepable_text(prompt), self._services.max_prompt_chars)
        return Draft(self.user_id, text, message_id, False, self.conversation_id)

    # --- start: admit, replace, store the prompt, build the request ------------------------

    def start(self) -> Started | Refused | Failed | OutcomeUnknown:
        """Everything before the model is called; only Started calls it."""
        prompt = self._request.prompt
        refusal = self._check_prompt(prompt) if prompt is not None else None
        if refusal is not None:
            return refusal
        begun = self._begin()
        if not isinstance(begun, TurnStart):
            return begun
        self._start, self.prompt_stored = begun, prompt is not None
        self._summary_on = begun.summary.enabled
        planned = self._services.context.sendable(
            self.user_id, self.conversation_id, begun.window, begun.summary
        )
        if not planned.messages or planned.messages[-1].role is not Role.USER:
            self._settle(0)
            return Failed(TOO_LONG)
        self._planned = planned
        return Started()

    def _check_prompt(self, prompt: str) -> Refused | None:
        """A prompt that can never be sent: empty, past the length limit, or past what the
        model's context holds. Nothing is stored or counted."""
        services, draft = self._services, self.draft()
        if not prompt.strip():
            return Refused("Your message is empty; nothing was sent.")
        not_text = prompt_refusal(prompt)
        if not_text is not None:
            return Refused(not_text, draft)
        limit = services.max_prompt_chars
        if len(prompt) > limit and draft is not None:
            kept = "" if draft.text == prompt else f" Only its first {limit:,} characters are kept."
            return Refused(
                f"Your message has {len(prompt):,} characters; the limit is {limit:,}. Nothing "
                f"was sent or stored.{kept}",
                draft,
            )
        prompt_tokens = services.memory.token_counter.count_message(Role.USER.value, prompt)
        too_big = services.context.budget.oversized_prompt(
            prompt_tokens, self._conversation.window.system.token_count
        )
        return Refused(too_big, draft) if too_big else None

    def _begin(self) -> TurnStart | Refused | Failed | OutcomeUnknown:
        """One script: admit under the user's limits (a write: a Redis that could not store
        the reply refuses here, before the model is called and paid for), remove what is
        replaced (only if it is still what the page showed), store the prompt exactly once by
        its id, and read the request's window and summary. Refused whole, or done whole."""
        request, services = self._request, self._services
        try:
            return services.memory.begin_turn(
                self.user_id,
                self.conversation_id,
                policy=services.admission.policy_for(self.user_id),
                # what recall and memories may add is planned after admission: reserved now
                reply_tokens=services.context.budget.reply_tokens
                + services.context.added_allowance,
                prompt=request.prompt,
                message_id=request.message_id,
                replace_from=request.replace_from,
                expect_last_seq=request.expect_last_seq,
                keep_replaced=request.keep_replaced,
                window_size=self._conversation.window_size,
            )
        except ChatMemoryError as error:
            return self._not_begun(error)

    def _not_begun(self, error: ChatMemoryError) -> Refused | Failed | OutcomeUnknown:
        """Nothing changed (or, outcome unknown, the prompt may be in): why, with the prompt
        kept. A Retry refused leaves its stored prompt unanswered (Failed)."""
        request, draft = self._request, self.draft()
        if request.prompt is None and request.replace_from is None:
            return Failed(reply_refusal(error))
        if request.prompt is None:
            if isinstance(error, StorageUnavailable):
                return Refused(f"Regenerating the reply failed: storage unavailable ({error}).")
            return Refused(f"Regenerating the reply failed: {reply_refusal(error)}")
        if draft is not None and isinstance(error, WriteOutcomeUnknown):
            return OutcomeUnknown(storage_refusal(error), replace(draft, outcome_unknown=True))
        if isinstance(error, LimitExceeded):
            return Refused(f"{error} Your message was not sent; it is kept below.", draft)
        if request.replace_from is not None and not isinstance(error, StorageUnavailable):
            return Refused(replace_refusal(error), draft)
        return Refused(storage_refusal(error), draft)

    # --- the reply -------------------------------------------------------------------------

    def stream(self) -> Iterator[str]:
        """The reply's text as it arrives; a model failure ends it (finish() says why)."""
        if self._chunks is None:
            self._chunks = self._model_chunks()
        return self._chunks

    def _model_chunks(self) -> Generator[str, None, None]:
        """The model's answer; refused as longer than its context before anything came, the
        request is sent once more as the longest window that fits what the server said."""
        if self._planned is None:
            raise RuntimeError("stream() before a successful start()")
        try:
            try:
                yield from self._ask(self._planned)
            except ContextOverflow as overflow:
                smaller = self._smaller(self._planned, overflow)
                if smaller is None:
                    self._failure = overflow.advice(has_history=False)
                    return
                self._planned = smaller
                yield from self._ask(smaller)
        except ModelError as error:
            self._failure, self._location = str(error), error.location

    def _ask(self, planned: PlannedRequest) -> Generator[str, None, None]:
        self._reply = self._services.model.stream(planned.as_openai())
        yield from self._reply

    def _smaller(self, refused: PlannedRequest, overflow: ContextOverflow) -> PlannedRequest | None:
        """What still fits, when the server refused before answering anything."""
        if self._reply is not None and self._reply.text:
            return None
        return self._services.context.fit(
            self.user_id, self.conversation_id, self._conversation.window_size, refused, overflow
        )

    def abort(self) -> None:
        """Hang up on the model now (safe from another thread): the stream being read ends."""
        if self._reply is not None:
            self._reply.hang_up()

    def _close_stream(self) -> None:
        if self._chunks is not None:
            self._chunks.close()
        if self._reply is not None:
            self._reply.close()

    def stop(self) -> Stopped:
        """The reader went away mid-reply: the model stream is closed, and what it used so far
        (the prompt and what was produced) is counted; nothing is stored."""
        self._close_stream()
        produced = self._reply.text if self._reply is not None else ""
        if self._planned is not None:
            self._settle(self._services.context.tokens_spent(self._reply, self._planned))
        return Stopped(produced)

    def finish(self) -> Stored | Failed | OutcomeUnknown:
        """After the stream ended: a failure says why; a complete reply is stored (and the
        conversation's first reply asks for its title; with a model, memories are proposed)."""
        planned, reply = self._planned, self._reply
        if planned is None or reply is None or self._failure is not None:
            # a reply failing part way counts its prompt and what it produced
            self._settle(self._services.context.tokens_spent(reply, planned) if planned else 0)
            return Failed(self._failure or "The model sent no reply.", self._location)
        stored = self._finish(planned, reply)
        if isinstance(stored, Stored) and self._needs_title:
            title_after_first_reply(
                self._services,
                self.user_id,
                self.conversation_id,
                planned.messages[-1].content,
                stored.reply.content,
            )
        if isinstance(stored, Stored):  # in the background, from the prompt just answered
            prompt = planned.messages[-1]
            propose_after_reply(self._services, self.user_id, self.conversation_id,
                                prompt.seq, prompt.content, stored.reply.content)  # fmt: skip
        return stored

    def finish_stopped(self) -> Stored | Stopped | Failed | OutcomeUnknown:
        """The user stopped the reply: the model stream is closed and what it had produced is
        stored (once, by its id), marked stopped, counting the prompt and that text; with
        nothing produced, only that is counted (Stopped)."""
        self._close_stream()
        planned, reply, start = self._planned, self._reply, self._start
        if planned is None or reply is None or start is None or not reply.text.strip():
            return self.stop()
        used = self._services.context.tokens_spent(reply, planned)
        counter = self._services.memory.token_counter
        usage = Usage(
            prompt_tokens=planned.server_token_count or planned.token_count,
            completion_tokens=counter.count_text(reply.text),
            estimated=True,
            stopped=True,
        )
        try:
            message = self._services.memory.finish_turn(
                start, reply=reply.text, used_tokens=used, usage=usage
            )
        except ChatMemoryError as error:
            return reply_not_stored(error)
        self._start = None
        return Stored(message) if message is not None else Stopped(reply.text)

    def _finish(self, planned: PlannedRequest, reply: Reply) -> Stored | Failed | OutcomeUnknown:
        """One script: store the reply once by the id begin_turn fixed, and settle the
        reservation to what the reply used (what the server reported, else the app's count)."""
        start, context = self._start, self._services.context
        if start is None:
            return Failed("The model sent no reply.")
        usage = context.usage_of(reply, planned)
        used = usage.total_tokens if usage else context.tokens_spent(reply, planned)
        try:
            message = self._services.memory.finish_turn(
                start, reply=reply.text, used_tokens=used, usage=usage
            )
        except ChatMemoryError as error:
            return reply_not_stored(error)
        self._start = None  # settled
        return Stored(message) if message is not None else Failed("The model sent no reply.")

    def update_summary(self) -> str | None:
        """With the summary on, fold what left the window into it; what went wrong, if
        anything. Call after a stored reply only (never before the reply is safe)."""
        if not self._summary_on:
            return None  # begin_turn read it: off, nothing to fold and nothing to read
        try:
            return self._services.context.fold_summary(
                self.user_id, self.conversation_id, self._conversation.window_size
            )
        except StorageUnavailable as error:
            return f"Updating the summary failed: storage unavailable ({error})."
        except ChatMemoryError as error:
            return f"Updating the summary failed: {error}"

    def _settle(self, used_tokens: int) -> None:
        """Once per turn, with no reply to store: the reservation becomes what was used (if
        Redis refuses now, the larger reservation simply stands)."""
        if self._start is not None:
            with contextlib.suppress(ChatMemoryError):
                self._services.memory.finish_turn(self._start, reply=None, used_tokens=used_tokens)
            self._start = None
