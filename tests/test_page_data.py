"""The Streamlit-free halves of what the page shows: a prompt holding a character that is not
text is refused in words (and kept, showable), and usage totals that hold the app's estimates
say so, so the page can mark them (≈). The memory API against the real Redis."""

from __future__ import annotations

import pytest

from chatbot.prompt_check import keepable_text, prompt_refusal, unpaired_surrogate
from memory import ChatMemory, InvalidInput, Role, Usage

CONV = "c0ffee"


def test_a_lone_surrogate_is_refused_in_words_and_nothing_is_stored(memory: ChatMemory) -> None:
    with pytest.raises(InvalidInput, match="unpaired surrogate"):
        memory.append("ann", Role.USER, "half an emoji: \ud83d", conversation_id=CONV)
    with pytest.raises(InvalidInput, match="at character 3"):
        memory.set_system_instruction("ann", "ab\udfff")
    assert memory.messages("ann", CONV) == []


def test_the_page_can_say_why_and_keep_the_prompt_showable() -> None:
    pasted = "see \ud83d\ude00 and \ud800 here"  # a pair as two code points, and a lone half
    assert unpaired_surrogate(pasted) == 4
    refusal = prompt_refusal(pasted)
    assert refusal is not None and "not text" in refusal and "Nothing was sent" in refusal
    kept = keepable_text(pasted)
    assert kept == "see 😀 and \N{REPLACEMENT CHARACTER} here"
    assert unpaired_surrogate(kept) is None and prompt_refusal(kept) is None
    assert keepable_text("plain") == "plain" and prompt_refusal("plain") is None


def test_usage_totals_say_how_many_replies_were_estimated(memory: ChatMemory) -> None:
    memory.append("ann", Role.USER, "hi", conversation_id=CONV)
    memory.append("ann", Role.ASSISTANT, "reported", conversation_id=CONV, usage=Usage(10, 2))
    assert not memory.conversation("ann", CONV).usage_totals.estimated
    memory.append("ann", Role.USER, "again", conversation_id=CONV)
    memory.append(
        "ann",
        Role.ASSISTANT,
        "no usage came",
        conversation_id=CONV,
        usage=Usage(12, 3, estimated=True),
    )
    totals = memory.conversation("ann", CONV).usage_totals
    assert (totals.replies, totals.estimated_replies, totals.estimated) == (2, 1, True)
