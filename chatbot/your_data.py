"""What the "Your data" part of the page (issue 16) needs, with no Streamlit: where a search
hit sits in its conversation, what an erase would delete, the words of the notes shown after
an import or an erase, and the exports behind the download buttons, which never raise."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from chatbot.conversation_list import plural
from chatbot.formatting import plain
from memory import MAX_WINDOW, ChatMemory, ChatMemoryError, Role, SearchHit
from memory.portable import ImportRejected, ImportResult, import_file

ROLE_NAMES = {Role.USER: "You", Role.ASSISTANT: "Assistant"}


def found_seq(raw: str | None) -> int | None:
    """The message a URL's `m=<seq>` names, or None when it names none (absent, not a number)."""
    if raw is None or not raw.isdecimal() or len(raw) > 18:
        return None
    return int(raw) or None


def messages_to_reach(
    memory: ChatMemory, user_id: str, conversation_id: str, seq: int, first_page: int
) -> int | None:
    """How many of the conversation's newest messages a page must show to include the one with
    `seq` (None when it holds no such message: expired, deleted, or another conversation's).
    Reads a first page, then one of MAX_WINDOW, then the whole conversation, stopping as soon
    as a read reaches back to `seq`: a hit among the newest messages costs one small read."""
    for size in (first_page, MAX_WINDOW):
        page = memory.conversation(user_id, conversation_id, window_size=0, page_size=size)
        messages = page.recent
        if not page.has_earlier or (messages and messages[0].seq <= seq):
            break
    else:
        messages = tuple(memory.messages(user_id, conversation_id))
    for index, message in enumerate(messages):
        if message.seq == seq:
            return len(messages) - index
    return None


def hit_line(hit: SearchHit) -> str:
    """Who said it and when, under a search hit's title (app text only: safe as Markdown)."""
    when = datetime.fromtimestamp(hit.created_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{ROLE_NAMES.get(hit.role, hit.role.value)} · {when}"


def stored_amounts(memory: ChatMemory, user_id: str) -> tuple[int, int]:
    """(conversations, messages) the user has stored now, for the erase confirmation. Message
    counts are summed over the MAX_WINDOW most recent conversations (all but extreme users')."""
    listing = memory.conversations(user_id, limit=1)
    if listing.total > len(listing.pinned) + len(listing.recent):
        listing = memory.conversations(user_id, limit=min(listing.total, MAX_WINDOW))
    messages = sum(info.message_count for info in (*listing.pinned, *listing.recent))
    return listing.total, messages


def import_note(result: ImportResult, file_name: str) -> str:
    """What an import did, the conversations it recognised as already here included."""
    messages = sum(info.message_count for info in result.imported)
    here = len(result.already_here)
    if not result.imported and here:
        return (
            f"{file_name} holds nothing new: its {plural(here, 'conversation')} "
            f"{'is' if here == 1 else 'are'} already here (imported before). Nothing was added."
        )
    note = (
        f"Imported {plural(len(result.imported), 'conversation')} with "
        f"{plural(messages, 'message')} from {file_name}."
    )
    if here:
        note += (
            f" {plural(here, 'conversation')} of it {'was' if here == 1 else 'were'} already "
            "here (imported before) and not added again."
        )
    return note


def erased_note(conversations: int, messages: int) -> str:
    return (
        f"Everything stored for you was erased ({plural(conversations, 'conversation')}, "
        f"{plural(messages, 'message')}, your settings and usage). You are starting fresh."
    )


def import_upload_file(memory: ChatMemory, user_id: str, raw: bytes) -> ImportResult:
    """`import_file`, its refusal (which may quote the file) made inert for the page."""
    try:
        return import_file(memory, user_id, raw)
    except ImportRejected as error:
        raise ImportRejected(plain(str(error))) from None


def exporter(export: Callable[[], str]) -> Callable[[], str]:
    """A download's deferred data: runs on a click, on a thread of its own where nothing can be
    shown on the page, so a storage failure becomes the file's text instead of an exception."""

    def run() -> str:
        try:
            return export()
        except ChatMemoryError as error:
            return f"Export failed: {error}. Nothing was exported; try again.\n"

    return run
