"""The sidebar's usage: the last reply's tokens and cost, and the user's totals."""

from __future__ import annotations

from streamlit.delta_generator import DeltaGenerator

from chatbot.formatting import totals_line, usage_line
from chatbot.services import Services
from memory import Conversation


def usage_section(slot: DeltaGenerator, services: Services, conversation: Conversation) -> None:
    """In `slot` (in the sidebar): drawn again, in place, once a turn's reply is stored."""
    bar = slot.container()
    bar.subheader("Usage")
    last = conversation.last_reply_usage
    if last is not None:
        bar.caption(f"Last reply: {usage_line(last, services.prices)}")
    bar.caption(f"Your total: {totals_line(conversation.usage_totals, services.prices)}")
