"""What the "Your data" part of the page (issue 16) needs besides app.py's own helpers: where a
search hit sits in its conversation, what an erase would delete, the words of the notes shown
after an import or an erase, and the download buttons, whose exports never raise."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

from streamlit.delta_generator import DeltaGenerator

from chatbot.conversation_list import plural
from memory import MAX_WINDOW, ChatMemory, ChatMemoryError, ConversationInfo, Role, SearchHit
from memory.portable import (
    ImportRejected,
    download_name,
    export_json,
    export_markdown,
    import_file,
)

FOUND_HERE = "🔎 found here"
# Runs in a component's iframe (same origin): brings the message a search hit opened into view.
# The page sticks to its bottom while a chat renders, so this keeps the mark in view until it
# has stayed there for a second (or ten seconds have passed).
SCROLL_TO_FOUND = """<script>
const app = window.parent;
const started = Date.now();
let steady = 0;
const step = () => {
  const mark = [...app.document.querySelectorAll("[data-testid='stCaptionContainer']")]
    .find(element => element.innerText.includes("🔎 found here"));
  if (mark) {
    const box = mark.getBoundingClientRect();
    if (box.top >= 0 && box.bottom <= app.innerHeight) steady++;
    else { mark.scrollIntoView({block: "center"}); steady = 0; }
  }
  if (steady < 10 && Date.now() - started < 10000) setTimeout(step, 100);
};
step();
</script>"""

ROLE_NAMES = {Role.USER: "You", Role.ASSISTANT: "Assistant"}
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


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


def import_note(imported: list[ConversationInfo], file_name: str) -> str:
    messages = sum(info.message_count for info in imported)
    return (
        f"Imported {plural(len(imported), 'conversation')} with {plural(messages, 'message')} "
        f"from {file_name}."
    )


def erased_note(conversations: int, messages: int) -> str:
    return (
        f"Everything stored for you was erased ({plural(conversations, 'conversation')}, "
        f"{plural(messages, 'message')}, your settings and usage). You are starting fresh."
    )


def inert(text: str) -> str:
    """Text from a user's file (its name, a record quoted in an error) for a Markdown element
    (st.success, st.error): every Markdown, LaTeX and link character escaped, shown as typed."""
    return _MARKDOWN.sub(r"\\\1", text)


def import_upload_file(memory: ChatMemory, user_id: str, raw: bytes) -> list[ConversationInfo]:
    """`import_file`, its refusal (which may quote the file) made inert for the page."""
    try:
        return import_file(memory, user_id, raw)
    except ImportRejected as error:
        raise ImportRejected(inert(str(error))) from None


def exporter(export: Callable[[], str]) -> Callable[[], str]:
    """A download's deferred data: runs on a click, on a thread of its own where nothing can be
    shown on the page, so a storage failure becomes the file's text instead of an exception."""

    def run() -> str:
        try:
            return export()
        except ChatMemoryError as error:
            return f"Export failed: {error}. Nothing was exported; try again.\n"

    return run


def download_buttons(
    where: DeltaGenerator,
    memory: ChatMemory,
    user_id: str,
    ids: list[str] | None,
    title: str | None,
    busy: bool,
) -> None:
    """JSON and Markdown downloads of the conversations `ids` (None: all), made on click."""
    which = "This chat" if ids else "All chats"
    for column, (kind, export, extension, mime) in zip(
        where.columns(2),
        (
            ("JSON", export_json, "json", "application/json"),
            ("Markdown", export_markdown, "md", "text/markdown"),
        ),
        strict=True,
    ):
        column.download_button(
            f"{which} ({kind})",
            data=exporter(partial(export, memory, user_id, ids)),
            file_name=download_name(title, extension),
            mime=mime,
            on_click="ignore",
            disabled=busy,
            key=f"export:{which}:{extension}",
        )
