"""The conversation list's row: one conversation as the list shows it, written by one Lua
function (common.lua `refresh_row`) and parsed by one Python function (`conversation_info`).
Every script that returns a conversation's info returns this row, so showing a new field in
the list means changing `refresh_row`, `conversation_info` and `ConversationInfo`.

The row: `<id>|<messages>|<created s>|<last active s>|<pinned 0/1>|<title source>|<title>`
(times to the ms; the title last, so it may hold `|`). The listing (`KeyLayout.listing_key`)
holds one per conversation under a head `#|<conversations>|<next expiry ms>`.
"""

from __future__ import annotations

from collections.abc import Sequence

from memory.models import ConversationInfo, ConversationList

_make = ConversationInfo._make  # skips the named tuple's keyword-handling __new__ (~15%)


def conversation_info(row: str) -> ConversationInfo:
    """One row as common.lua `refresh_row` writes it."""
    cid, count, created, last, pinned, source, title = row.split("|", 6)
    return _make((cid, title, source, float(created), float(last), int(count), pinned == "1"))


def listing_head(head: str) -> tuple[int, float]:
    """(conversations, ms the next message expires or 0) from the listing's head (common.lua
    `refresh_head`); (-1, 0) when `head` is not one."""
    if not head.startswith("#|"):
        return -1, 0
    _, total, next_expiry = head.split("|")
    return int(total), float(next_expiry or 0)


def conversation_list(page: Sequence[str], limit: int, total: int) -> ConversationList:
    """Up to `limit` rows of a page of the listing (its head, if there, skipped); the rows
    come pinned first. Parsing is most of the list's cost in Python."""
    infos = [conversation_info(row) for row in page if row[0] != "#"][:limit]
    return ConversationList(
        pinned=tuple(info for info in infos if info.pinned),
        recent=tuple(info for info in infos if not info.pinned),
        total=total,
    )
