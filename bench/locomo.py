"""A LoCoMo-format file loaded as the app stores chat: one user per conversation, one
conversation per session, each turn a message written by `ChatMemory.append`.

Turns are stored as `<speaker>: <text>` (plus ` [shares <caption>]` for a shared image), the
first speaker as the user and the second as the assistant, at the session's date. Evidence ids
are normalised (`D:11:26` -> `D11:26`, `D30:05` -> `D30:5`, `"D9:1 D4:4"` split); ids naming no
turn are dropped, and a question left without evidence is skipped (both counted).
"""

from __future__ import annotations

import datetime
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memory import ChatMemory, Role

_SESSION = re.compile(r"session_(\d+)")
_EVIDENCE = re.compile(r"D:?(\d+):0*(\d+)")


@dataclass(frozen=True)
class Question:
    user: str
    text: str
    category: int
    evidence: tuple[str, ...]  # dia_ids


@dataclass
class Loaded:
    turn_of_key: dict[str, str] = field(default_factory=dict)  # message key -> dia_id
    session_of_turn: dict[str, str] = field(default_factory=dict)  # "<user>/<dia_id>" -> session
    questions: list[Question] = field(default_factory=list)
    dropped_evidence: int = 0
    skipped_questions: int = 0
    append_seconds: list[float] = field(default_factory=list)


def session_id(number: int) -> str:
    return f"{number:04x}"


def _when(text: str) -> float:
    try:
        moment = datetime.datetime.strptime(text, "%I:%M %p on %d %B, %Y")
    except ValueError:
        return time.time()
    return moment.replace(tzinfo=datetime.UTC).timestamp()


def _turn_text(turn: dict[str, Any]) -> str:
    text = f"{turn['speaker']}: {turn['text']}"
    return f"{text} [shares {turn['blip_caption']}]" if turn.get("blip_caption") else text


def load(memory: ChatMemory, path: Path, max_sessions: int | None = None) -> Loaded:
    loaded = Loaded()
    for sample in json.loads(path.read_text(encoding="utf-8")):
        user = str(sample["sample_id"])
        conversation = sample["conversation"]
        sessions = sorted(
            (int(m.group(1)), turns)
            for name, turns in conversation.items()
            if (m := _SESSION.fullmatch(name)) and isinstance(turns, list)
        )[:max_sessions]
        known = set()
        for number, turns in sessions:
            start = _when(conversation.get(f"session_{number}_date_time", ""))
            for index, turn in enumerate(turns):
                role = Role.USER if turn["speaker"] == conversation["speaker_a"] else Role.ASSISTANT
                began = time.perf_counter()
                message = memory.append(user, role, _turn_text(turn),
                                        conversation_id=session_id(number),
                                        created_at=start + index)  # fmt: skip
                loaded.append_seconds.append(time.perf_counter() - began)
                loaded.turn_of_key[message.key] = turn["dia_id"]
                loaded.session_of_turn[f"{user}/{turn['dia_id']}"] = session_id(number)
                known.add(turn["dia_id"])
        _questions(loaded, user, sample.get("qa", []), known)
    return loaded


def _questions(loaded: Loaded, user: str, qa: list[dict[str, Any]], known: set[str]) -> None:
    for item in qa:
        ids = []
        for raw in item.get("evidence", []):
            for part in re.split(r"[\s;,]+", str(raw)):
                match = _EVIDENCE.fullmatch(part.strip())
                dia = f"D{int(match.group(1))}:{int(match.group(2))}" if match else None
                if dia in known:
                    ids.append(dia)
                elif part.strip():
                    loaded.dropped_evidence += 1
        if not ids:
            loaded.skipped_questions += 1
            continue
        question = Question(user, str(item["question"]), int(item.get("category", 0)), tuple(ids))
        loaded.questions.append(question)
