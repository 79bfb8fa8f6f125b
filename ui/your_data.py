"""The sidebar's "Your data": downloads of this chat and of all chats (made on click), the
import box (this app's export or ChatGPT's), and erasing everything stored for the user."""

from __future__ import annotations

from functools import partial

import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

from chatbot.conversation_list import plural
from chatbot.formatting import plain
from chatbot.identity import Identity
from chatbot.services import Services
from chatbot.your_data import erased_note, exporter, import_note, import_upload_file, stored_amounts
from memory import ChatMemory, ChatMemoryError, Conversation
from memory.portable import (
    MAX_IMPORT_BYTES,
    ImportResult,
    download_name,
    export_json,
    export_markdown,
)
from ui import state
from ui.confirm import ask, confirm
from ui.feedback import act, show_error
from ui.records import Confirmation, Destructive, Place

IMPORT_LABEL = "Import chats: this app's JSON export, or ChatGPT's conversations.json"
EXPORTS = (
    ("JSON", export_json, "json", "application/json"),
    ("Markdown", export_markdown, "md", "text/markdown"),
)


def import_upload(memory: ChatMemory, user_id: str, key: str) -> None:
    """The import box's on_change: checks the whole file, then imports all of it or nothing;
    the box empties either way (a new key), the outcome shown at the top of the section."""
    upload = state.widget_value(key)
    state.next_import_round()
    if not isinstance(upload, UploadedFile):
        return
    results: list[ImportResult] = []
    name = plain(upload.name)
    if act(
        Place.DATA,
        f"Importing {name}",
        lambda: results.append(import_upload_file(memory, user_id, upload.getvalue())),
    ):
        state.leave_note(import_note(results[0], name))


def erase_me(memory: ChatMemory, user_id: str, conversations: int, messages: int) -> None:
    """Every key of the user goes; the page starts fresh (no conversation in the URL)."""
    state.ask(None)
    if act(Place.DATA, "Erasing your data", lambda: memory.erase_user(user_id)):
        state.start_fresh()
        state.leave_note(erased_note(conversations, messages))


def download_buttons(
    memory: ChatMemory, user_id: str, ids: list[str] | None, title: str | None
) -> None:
    """JSON and Markdown downloads of the conversations `ids` (None: all), made on click; one
    a row, so that no label is cut off in the sidebar's width."""
    which = "This chat" if ids else "All chats"
    for kind, export, extension, mime in EXPORTS:
        st.sidebar.download_button(
            f"{which} ({kind})",
            data=exporter(partial(export, memory, user_id, ids)),
            file_name=download_name(title, extension),
            mime=mime,
            on_click="ignore",
            key=f"export:{which}:{extension}",
        )


def your_data_section(services: Services, identity: Identity, conversation: Conversation) -> None:
    bar, memory, user = st.sidebar, services.memory, identity.user_id
    bar.subheader("Your data")
    show_error(Place.DATA)
    note = state.take_note()
    if note:
        bar.success(note)
    if conversation.total_messages:
        title = conversation.info.title if conversation.info else ""
        download_buttons(memory, user, [conversation.conversation_id], title)
    download_buttons(memory, user, None, None)
    key = state.widget_key(f"import{state.import_round()}", user)
    bar.file_uploader(
        IMPORT_LABEL,
        type=["json"],
        key=key,
        on_change=import_upload,
        args=(memory, user, key),
        max_upload_size=MAX_IMPORT_BYTES // 1_000_000,
    )
    erase_controls(memory, user)


def erase_controls(memory: ChatMemory, user_id: str) -> None:
    if state.confirmation_of(user_id, Destructive.ERASE_ME) is None:
        st.sidebar.button(
            "Erase all my data…",
            on_click=ask,
            args=(Confirmation(user_id, Destructive.ERASE_ME),),
        )
        return
    try:
        conversations, messages = stored_amounts(memory, user_id)
    except ChatMemoryError as error:
        st.sidebar.error(f"Cannot tell what would be erased: {error}")
        return
    confirm(
        f"Erase everything stored for you: {plural(conversations, 'conversation')} with "
        f"{plural(messages, 'message')}, your memories, settings, usage totals and summaries? "
        "This cannot be undone.",
        ("Yes, erase everything", erase_me, (memory, user_id, conversations, messages)),
        "erase",
    )
