"""The sidebar, top to bottom: search, conversations, then "Settings" (context, recall,
memories, instruction, retention, usage, history, your data), built only while it is open: a
closed panel costs a rerun nothing (the sections were 40% of a rerun's time).
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from chatbot.identity import Identity
from chatbot.services import Services
from memory import PageView
from ui.context import context_section, show_request_tokens
from ui.conversation_list import conversations_section
from ui.history import history_section
from ui.instruction import instruction_section
from ui.memories import memories_section
from ui.recall import recall_settings
from ui.retention import retention_section, watch_expiry
from ui.search import search_section
from ui.usage import usage_section
from ui.your_data import your_data_section

SETTINGS_LABEL = "⚙️ Settings"
SETTINGS_KEY = "settings"  # of the tab, not of a user: it stays open across a user switch


Recount = Callable[[PageView], None]
"""A part of the sidebar that counts the conversation's messages, drawn again in place from the
page read after a turn's reply (the run that streams it shows it stored)."""


def sidebar(services: Services, identity: Identity, page: PageView) -> list[Recount]:
    conversation = page.conversation
    search_section(services, identity)
    conversations_section(services, identity, page)
    if not st.sidebar.toggle(
        SETTINGS_LABEL,
        key=SETTINGS_KEY,
        help="History length and tokens, recall, memories, system instruction, retention, "
        "usage, your data.",
    ):
        watch_expiry(services, identity, conversation)
        return []
    with st.sidebar:
        numbers = context_section(services, identity, page)
    recall_settings(services, identity)
    memories_section(services, identity)
    instruction_section(services, identity, conversation.window.system)
    retention_section(services, identity, conversation)
    usage = st.sidebar.empty()
    usage_section(usage, services, conversation)
    history_section(services, identity, conversation)
    your_data_section(services, identity, conversation)
    return [
        lambda fresh: show_request_tokens(numbers, services, fresh),
        lambda fresh: usage_section(usage, services, fresh.conversation),
    ]
