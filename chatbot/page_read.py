"""Everything one render of the page reads from Redis, read in one place: the open
conversation (its newest page of messages, context window, settings, retention, usage), the
conversation list and the conversation's summary state. The sections render from it and read
nothing themselves (a fragment rerun alone re-reads what it shows)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from memory import MAX_WINDOW, Conversation, ConversationList
from memory.summary import SummaryState

if TYPE_CHECKING:
    from chatbot.services import Services


@dataclass(frozen=True)
class PageRead:
    conversation: Conversation
    listing: ConversationList
    summary: SummaryState


def read_page(
    services: Services, user_id: str, conversation_id: str, *, page_size: int, list_limit: int
) -> PageRead:
    """The newest `page_size` messages with everything else a render needs; past what one
    read returns (MAX_WINDOW), the page is filled from the whole conversation."""
    memory = services.memory
    conversation = memory.conversation(
        user_id, conversation_id, page_size=min(page_size, MAX_WINDOW)
    )
    if page_size > MAX_WINDOW and conversation.has_earlier:
        page = memory.messages(user_id, conversation_id)[-page_size:]
        conversation = replace(conversation, recent=tuple(page))
    listing = memory.conversations(user_id, limit=list_limit)
    summary = services.context.summaries.state(user_id, conversation_id)
    return PageRead(conversation, listing, summary)


def newest_seq(conversation: Conversation) -> int:
    """The seq of the conversation's newest message as this read saw it (0: none): what an
    action that removes messages names, so it is refused once the conversation moved on."""
    return conversation.recent[-1].seq if conversation.recent else 0
