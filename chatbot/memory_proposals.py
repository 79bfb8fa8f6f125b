"""Memories proposed by the model after a reply is stored: facts about the user from their
prompt, each with the model's own verdict on the user's existing memories (restates one:
merged into it; contradicts one: replaces it, the old kept as superseded).

Off the reply path: asked in the background once the reply is safe, like titles. A model
request of the user's like any other: admitted by their limits and counted; so it is asked
only for a prompt in the first person ("I", "my", "we", "our"), where facts about the user
are said. Never offline
(the offline responder proposes nothing), never with the user's memory off. Whatever the
model answers is checked: JSON of at most MAX_PROPOSALS short texts; a verdict naming a
memory that is not one of this user's active ones is ignored (then the offline rules of
memory/memory_rules.py decide).
"""

from __future__ import annotations

import json
import logging
import re
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chatbot.llm import ModelError, Provider, Reply, tokens_spent
from memory import ChatMemoryError
from memory.memories import MAX_MEMORY_CHARS, AddResult, MemoryRecord

if TYPE_CHECKING:
    from chatbot.services import Services

INSTRUCTION = (
    "You keep short facts about the user that are worth remembering across conversations "
    "(preferences, people and names, places, work, plans). From the user's message below, "
    'list such facts, written from the user\'s side ("I prefer metric units", "My daughter '
    'is Mia"). Answer with JSON only: '
    '{"memories": [{"text": "...", "restates": null, "contradicts": null}]}. '
    'Set "restates" to the id of a known memory that says the same thing, "contradicts" to '
    "the id of one the new fact makes untrue. At most 3; none when nothing is worth keeping."
)
MAX_PROPOSALS = 3
PROPOSAL_MAX_TOKENS = 200
_EXCERPT_CHARS = 1500
KNOWN_IN_REQUEST = 20  # of the user's active memories, the newest, shown to the model

# A fact about the user is said in the first person ("I live…", "my daughter…", "we moved…");
# a prompt without one ("tell me about Redis") is not worth a model request of the user's.
_ABOUT_THE_USER = re.compile(r"\b(?:i|i'm|i've|i'd|my|mine|myself|we|we're|our|ours)\b", re.I)

_log = logging.getLogger(__name__)
_proposals = ThreadPoolExecutor(max_workers=1, thread_name_prefix="memories")


@dataclass(frozen=True)
class Proposal:
    text: str
    restates: str | None = None
    contradicts: str | None = None


def proposal_request(prompt: str, reply: str, known: list[MemoryRecord]) -> list[dict[str, str]]:
    listed = "\n".join(f"{m.id}: {m.text}" for m in known) or "(none)"
    return [
        {"role": "system", "content": f"{INSTRUCTION}\n\nKnown memories (id: text):\n{listed}"},
        {
            "role": "user",
            "content": f"User: {prompt[:_EXCERPT_CHARS]}\n\nAssistant: {reply[:_EXCERPT_CHARS]}",
        },
    ]


def parse_proposals(answer: str, known_ids: set[str]) -> list[Proposal]:
    """The proposals in the model's answer; anything malformed is dropped, never raised."""
    start, end = answer.find("{"), answer.rfind("}")
    try:
        data: Any = json.loads(answer[start : end + 1]) if 0 <= start < end else {}
    except json.JSONDecodeError:
        return []
    items = data.get("memories") if isinstance(data, dict) else None
    proposals = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            continue
        text = " ".join(item["text"].split())
        if not text or len(text) > MAX_MEMORY_CHARS:
            continue
        restates, contradicts = item.get("restates"), item.get("contradicts")
        proposals.append(
            Proposal(
                text,
                restates if restates in known_ids else None,
                contradicts if contradicts in known_ids else None,
            )
        )
    return proposals[:MAX_PROPOSALS]


def propose_after_reply(
    services: Services, user_id: str, conversation_id: str, prompt_seq: int, prompt: str,
    reply: str,
) -> Future[list[AddResult]] | None:  # fmt: skip
    """Ask for proposals in the background (the future is returned for tests); None when
    none are asked: offline, no memories, the user's memory off, or a prompt that says
    nothing about the user (no "I", "my", "we", "our")."""
    memories = services.memories
    if services.model.config.provider is Provider.OFFLINE or memories is None:
        return None
    if not _ABOUT_THE_USER.search(prompt.replace("\u2019", "'")):
        return None
    try:
        if not memories.enabled(user_id):
            return None
    except ChatMemoryError:
        return None
    return _proposals.submit(propose, services, user_id, conversation_id, prompt_seq, prompt, reply)


def propose(
    services: Services, user_id: str, conversation_id: str, prompt_seq: int, prompt: str,
    reply: str,
) -> list[AddResult]:  # fmt: skip
    """One proposal request, admitted and settled; each proposal stored from the prompt."""
    memories = services.memories
    if memories is None:
        return []
    try:
        known = [m for m in memories.listed(user_id) if m.active][:KNOWN_IN_REQUEST]
        answer = _ask(services, user_id, proposal_request(prompt, reply, known))
    except (ChatMemoryError, ModelError) as error:  # over the limits, storage, the model
        _log.info("No memories proposed: %s", error)
        return []
    results = []
    for proposal in parse_proposals(answer, {m.id for m in known}):
        try:
            results.append(
                memories.add(
                    user_id,
                    proposal.text,
                    conversation_id=conversation_id,
                    seq=prompt_seq,
                    origin="model",
                    restates=proposal.restates,
                    contradicts=proposal.contradicts,
                )
            )
        except ChatMemoryError as error:  # the cap, the prompt deleted meanwhile
            _log.info("A proposed memory was not stored: %s", error)
    return results


def _ask(services: Services, user_id: str, request: list[dict[str, str]]) -> str:
    counter = services.memory.token_counter
    prompt_tokens = counter.count_request(request)
    reservation = services.admission.admit(user_id, prompt_tokens + PROPOSAL_MAX_TOKENS)
    answer: Reply | None = None
    try:
        answer = services.model.stream(request, PROPOSAL_MAX_TOKENS)
        return "".join(answer)
    finally:
        services.admission.settle(reservation, tokens_spent(answer, prompt_tokens, counter))


def wait_for_proposals(timeout: float = 10.0) -> None:
    """Return once every proposal asked so far is done (one worker: they run in order)."""
    _proposals.submit(lambda: None).result(timeout)
