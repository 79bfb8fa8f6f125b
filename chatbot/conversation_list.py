"""The sidebar's conversation list: what each entry reads, which conversation opens by
default, and the title written after a conversation's first reply.

A title never delays a reply: the memory layer titles a conversation by its first prompt's
words when it stores it, and when a model is configured, its title is asked for after the
first reply is stored, on a worker thread that only writes Redis (`set_auto_title` lets a
model's title replace the first words, never a title the user typed). The page shows it on
its next run; a failing title call leaves the first words.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from chatbot.formatting import plain
from chatbot.llm import Provider
from chatbot.titles import title_request, write_title
from memory import (
    ChatMemoryError,
    Conversation,
    ConversationInfo,
    ConversationList,
    TitleSource,
)

if TYPE_CHECKING:
    from chatbot.services import Services

NEW_CHAT = "New chat"
_log = logging.getLogger(__name__)
_titles = ThreadPoolExecutor(max_workers=2, thread_name_prefix="titles")


def plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def title_of(info: ConversationInfo | None) -> str:
    return info.title if info is not None and info.title else NEW_CHAT


def entry_label(info: ConversationInfo) -> str:
    return ("📌 " if info.pinned else "") + plain(title_of(info))


def ago(seconds: float) -> str:
    if seconds < 60:
        return "just now"
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            return f"{plural(int(seconds // size), unit)} ago"
    return "just now"  # unreachable: seconds >= 60 matched "minute"


def activity_line(info: ConversationInfo, now: float | None = None) -> str:
    elapsed = max(0.0, (time.time() if now is None else now) - info.last_active)
    return f"{plural(info.message_count, 'message')} · {ago(elapsed)}"


def listed(listing: ConversationList) -> tuple[ConversationInfo, ...]:
    """The sidebar's order: pinned first, then the most recently active."""
    return (*listing.pinned, *listing.recent)


def awaits_title(conversation: Conversation) -> bool:
    """The reply about to be stored is the conversation's first (read before its prompt was
    stored: a New chat, or a prompt alone), and no better title than its words is there."""
    info = conversation.info
    return info is None or (
        info.title_source in (TitleSource.NONE, TitleSource.WORDS)
        and conversation.total_messages <= 1
    )


def title_after_first_reply(
    services: Services, user_id: str, conversation_id: str, prompt: str, reply: str
) -> Future[None] | None:
    """Ask the model (when one is configured) for the title of a conversation whose first
    reply was just stored, in the background (the future is returned for tests). It is a
    model request of the user's like any other: admitted by their limits and counted."""
    if services.model.config.provider is Provider.OFFLINE:
        return None
    future = _titles.submit(_model_title, services, user_id, conversation_id, prompt, reply)
    future.add_done_callback(_log_failure)
    return future


def _log_failure(future: Future[None]) -> None:
    """A title thread's unexpected error is logged (a future keeps it silently otherwise)."""
    error = future.exception()
    if error is not None:
        _log.error("The title was not written (the first words stay)", exc_info=error)


def _model_title(
    services: Services, user_id: str, conversation_id: str, prompt: str, reply: str
) -> None:
    memory = services.memory
    request = title_request(prompt, reply)
    try:
        admitted = services.admit(user_id, memory.token_counter.count_request(request))
    except ChatMemoryError as error:  # over the user's limits, or storage refusing writes
        _log.info("No model title (the first words stay): %s", error)
        return
    title, source, used = write_title(services.model, prompt, reply, memory.token_counter)
    services.settle(admitted, used)
    if source != TitleSource.MODEL:
        return
    try:
        memory.set_auto_title(user_id, conversation_id, title, TitleSource.MODEL)
    except ChatMemoryError as error:  # deleted meanwhile, or storage down: the words stay
        _log.info("The model's title was not stored: %s", error)
