"""The sidebar, top to bottom: search, conversations, then "Settings" (context, recall,
memories, instruction, retention, usage, history, your data), built only while it is open: a
closed panel costs a rerun nothing (the sections were 40% of a rerun's time).
"""

from __future__ import annotations

import streamlit as st

from chatbot.identity import Identity
from chatbot.services import Services
from memory import PageView
from ui.context import context_section
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


def sidebar(services: Services, identity: Identity, page: PageView, busy: bool) -> None:
    conversation = page.conversation
    search_section(services, identity, busy)
    conversations_section(services, identity, page, busy)
    if not st.sidebar.toggle(
        SETTINGS_LABEL,
        key=SETTINGS_KEY,
        disabled=busy,
        help="History length and tokens, recall, memories, system instruction, retention, "
        "usage, your data.",
    ):
        watch_expiry(services, identity, conversation)
        return
    with st.sidebar:
        context_section(services, identity, page, busy)
    recall_settings(services, identity, busy)
    memories_section(services, identity, busy)
    instruction_section(services, identity, conversation.window.system, busy)
    retention_section(services, identity, conversation, busy)
    usage_section(services, conversation)
    history_section(services, identity, conversation, busy)
    your_data_section(services, identity, conversation, busy)
