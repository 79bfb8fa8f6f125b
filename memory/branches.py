"""Versions of a conversation: editing any prompt keeps what it replaces as a branch that can
be shown again ("< 1/2 >").

The timeline stays the one list of the *shown* branch, so every read path (page, window,
search, recall, counts, summary) reads only what is shown and needs no change. Editing prompt
k (begin_turn.lua with `keep`) moves the tail k..end out of the timeline into the
conversation's hidden set and stores it as an alternative of its fork point (the message
before k); the edited prompt is stored as a new alternative and its reply follows as a normal
turn. Switching (branch.lua) swaps the shown tail with a stored alternative. Both are one
script each, checked against the newest message the page showed, and exactly once by an id.
The layout and the rules are in memory/lua/common.lua ("branches").
"""

from __future__ import annotations

from typing import Any

from memory.models import BranchBusy, BranchPoint, ChatMemoryError, InvalidInput, StaleTarget

MAX_BRANCH_TAIL = 500
"""The most messages an edit or a switch moves at once (one script, so it is bounded): a
prompt with more messages after it cannot be edited, nor a version switched away from."""


def branch_points(forks: dict[str, str]) -> tuple[BranchPoint, ...]:
    """The conversation's fork points (common.lua `set_fork`: parent -> shown|count|head),
    in the order of their parents."""
    points = []
    for parent, record in forks.items():
        shown, count, head = (int(part) for part in record.split("|"))
        points.append(BranchPoint(int(parent), shown, count, head))
    return tuple(sorted(points, key=lambda point: point.parent_seq))


def switch_refusal(reply: list[Any], expected: int | str) -> ChatMemoryError | None:
    """Why branch.lua switched nothing, or None when it switched (or had already)."""
    kind = reply[0]
    if kind == "stale":
        return StaleTarget(int(expected or 0), int(reply[1]))
    if kind == "busy":
        return BranchBusy()
    if kind == "gone":
        return InvalidInput(
            "That version of the conversation is no longer there (it may have been cleared or "
            "expired); nothing was switched."
        )
    if kind == "too_many":
        return InvalidInput(
            f"More than {MAX_BRANCH_TAIL} messages follow this point, too many to switch at "
            "once; nothing was switched."
        )
    return None


def too_long_to_edit() -> InvalidInput:
    return InvalidInput(
        f"Only a prompt with at most {MAX_BRANCH_TAIL} messages from it on can be edited; "
        "nothing was changed."
    )


def not_a_prompt() -> InvalidInput:
    return InvalidInput(
        "That message is no longer a prompt of the version shown (it was switched or removed "
        "since); nothing was changed."
    )
