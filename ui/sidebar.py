"""The sidebar, top to bottom: search, conversations, then the settings sections (context,
instruction, retention, usage, history, your data)."""

from __future__ import annotations

import streamlit as st

from chatbot.identity import Identity
from chatbot.page_read import PageRead
from chatbot.services import Services
from ui.context import context_section
from ui.conversation_list import conversations_section
from ui.history import history_section
from ui.instruction import instruction_section
from ui.retention import retention_section
from ui.search import search_section
from ui.usage import usage_section
from ui.your_data import your_data_section


def sidebar(services: Services, identity: Identity, page: PageRead, busy: bool) -> None:
    conversation = page.conversation
    search_section(services, identity, busy)
    conversations_section(services, identity, page, busy)
    with st.sidebar:
        context_section(services, identity, page, busy)
    instruction_section(services, identity, conversation.window.system, busy)
    retention_section(services, identity, conversation, busy)
    usage_section(services, conversation)
    history_section(services, identity, conversation, busy)
    your_data_section(services, identity, conversation, busy)
