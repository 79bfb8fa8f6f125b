"""Everything one render of the page reads from Redis, in one script call
(`ChatMemory.page_view`): the open conversation (its newest page of messages, context window,
settings, retention, usage, row), a page of the conversation list and the summary state. The
sections render from it and read nothing themselves (a fragment rerun alone re-reads what it
shows)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from memory import MAX_WINDOW, PageView

if TYPE_CHECKING:
    from chatbot.services import Services


def read_page(
    services: Services,
    user_id: str,
    conversation_id: str | None,
    *,
    page_size: int,
    list_limit: int,
) -> PageView:
    """The newest `page_size` messages of the conversation (None: the most recently active,
    or a fresh id) with everything else a render needs; past what one read returns
    (MAX_WINDOW), the page is filled from the whole conversation."""
    memory = services.memory
    view = memory.page_view(
        user_id, conversation_id, page_size=min(page_size, MAX_WINDOW), list_limit=list_limit
    )
    if page_size > MAX_WINDOW and view.conversation.has_earlier:
        page = memory.messages(user_id, view.conversation.conversation_id)[-page_size:]
        view = replace(view, conversation=replace(view.conversation, recent=tuple(page)))
    return view
