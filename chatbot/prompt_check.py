"""What a prompt may not hold before it is stored or shown again: a lone UTF-16 surrogate (half
of an emoji pair, pasted or typed apart) is not text. Redis cannot store it and the page cannot
send it back to the browser, so the prompt is refused with a message and kept with that
character replaced."""

from __future__ import annotations

REPLACEMENT = "\N{REPLACEMENT CHARACTER}"


def unpaired_surrogate(text: str) -> int | None:
    """The index of the first character that is half of a surrogate pair, or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        return error.start
    return None


def prompt_refusal(text: str) -> str | None:
    """Why a prompt cannot be sent as it is, or None when it can."""
    at = unpaired_surrogate(text)
    if at is None:
        return None
    return (
        f"Your message holds a character that is not text at character {at + 1:,} "
        f"(U+{ord(text[at]):04X}, half of an emoji or symbol pair). Nothing was sent or "
        f"stored; it is kept below with {REPLACEMENT} in its place."
    )


def keepable_text(text: str) -> str:
    """The text with each surrogate pair joined into its character and each lone surrogate
    replaced by U+FFFD: safe to keep and show."""
    if unpaired_surrogate(text) is None:
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
