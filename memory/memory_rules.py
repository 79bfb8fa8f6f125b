"""When a new memory restates or contradicts one the user already has, without a model.

Two texts restate each other when they are equal once normalised (case, punctuation, spaces,
"I'm" for "I am"), or when they name the same subject with the same value. They contradict
only when they name the same subject with a different value, and only for subjects that hold
one value at a time, written in one of these forms (what is detected, and nothing else):

- "my/our <thing> is/are <value>" ("my daughter is Mia", "my favourite colour is blue"),
  with "my <thing>'s name is <value>" read as "my <thing> is <value>";
- "I live in <value>", "I work at/for <value>", "I am <n> years old".

Everything else is neither (two memories about different things), unless their vectors are
nearly identical (memory/memories.py MERGE_SIMILARITY), which is a restatement. With a model,
its own verdict on proposed memories comes first (chatbot/memory_proposals.py).
"""

from __future__ import annotations

import re
from enum import StrEnum

_SPACES = re.compile(r"\s+")
_EDGE = re.compile(r"^[\W_]+|[\W_]+$")
_POSSESSIVE = re.compile(r"^(?:my|our) (?P<subject>.+?)(?:'s name)? (?:is|are) (?P<value>.+)$")
_SINGLE_VALUED = (
    (re.compile(r"^i live in (?P<value>.+)$"), "home"),
    (re.compile(r"^i work (?:at|for) (?P<value>.+)$"), "employer"),
    (re.compile(r"^i am (?P<value>\d+) years? old$"), "age"),
)


class Relation(StrEnum):
    SAME = "same"  # a restatement: merge
    CONTRADICTS = "contradicts"  # same subject, another value: replace, keep the old
    DIFFERENT = "different"


def normalised(text: str) -> str:
    folded = _SPACES.sub(" ", text.casefold().replace("\u2019", "'")).strip()
    folded = re.sub(r"\bi'm\b", "i am", folded)
    return _EDGE.sub("", folded)


def subject_and_value(text: str) -> tuple[str, str] | None:
    """("my daughter", "mia") for "My daughter's name is Mia."; None when no rule applies."""
    plain = normalised(text)
    for pattern, subject in _SINGLE_VALUED:
        found = pattern.match(plain)
        if found:
            return subject, found["value"]
    found = _POSSESSIVE.match(plain)
    if found:
        return f"my {found['subject']}", found["value"]
    return None


def relation(new: str, old: str) -> Relation:
    if normalised(new) == normalised(old):
        return Relation.SAME
    new_fact, old_fact = subject_and_value(new), subject_and_value(old)
    if new_fact is None or old_fact is None or new_fact[0] != old_fact[0]:
        return Relation.DIFFERENT
    return Relation.SAME if new_fact[1] == old_fact[1] else Relation.CONTRADICTS
