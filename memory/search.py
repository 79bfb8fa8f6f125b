"""Full-text search over one user's messages: the RediSearch query and the snippet shown.

Nothing a user types is ever parsed as query syntax: the text is cut into words exactly where
RediSearch's tokenizer cuts stored content (every punctuation character and space separates
words, `_` does not), each word is escaped as well, and the words are AND-ed under a filter on
the user's tag. A query of punctuation only has no words and searches nothing.
"""

from __future__ import annotations

import re

from redisvl.utils.token_escaper import TokenEscaper

MAX_SEARCH_TERMS = 20
SNIPPET_CHARS = 160
_WORD = re.compile(r"\w+")
_ESCAPER = TokenEscaper()


def search_terms(text: str) -> list[str]:
    """The words of a user's search text, as the index tokenizes them."""
    return _WORD.findall(text)[:MAX_SEARCH_TERMS]


def search_query(tag: str, terms: list[str]) -> str:
    """Messages of the user with `tag` (in any conversation, legacy ones included) containing
    every term. `tag` is hex, so it needs no escaping; the terms are escaped anyway."""
    words = " ".join(_ESCAPER.escape(term) for term in terms)
    return f"(@user_tag:{{{tag}}} | @session_tag:{{{tag}}}) @content:({words})"


def snippet(content: str, terms: list[str], width: int = SNIPPET_CHARS) -> str:
    """About `width` characters of `content` around the first place a term (or its stem)
    occurs, on one line, with '…' where it was cut."""
    flat = " ".join(content.split())
    lowered = flat.casefold()
    found = [lowered.find(term.casefold()) for term in terms]
    start = min((at for at in found if at >= 0), default=0)
    begin = max(0, min(start - width // 3, len(flat) - width))
    end = begin + width
    return f"{'…' if begin else ''}{flat[begin:end]}{'…' if end < len(flat) else ''}"
