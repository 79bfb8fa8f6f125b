"""Imports up to the promised 20 MB: the upload limit lets them through, and parsing one takes
memory bounded by the file's size whatever its shape (measured as peak RSS in a process of its
own: Linux's VmHWM, reset just before parsing)."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from memory.portable import MAX_IMPORT_BYTES, MAX_IMPORT_CONTAINERS

ROOT = Path(__file__).resolve().parent.parent
PEAK = """
import sys
from memory.portable import ImportRejected, parse_import

def rss(field):
    line = next(l for l in open("/proc/self/status") if l.startswith(field))
    return int(line.split()[1]) * 1024

raw = open(sys.argv[1], "rb").read()
open("/proc/self/clear_refs", "w").write("5")  # the peak (VmHWM) starts again from here
before = rss("VmRSS:")
try:
    outcome = f"{sum(len(c.messages) for c in parse_import(raw))} messages"
except ImportRejected as error:
    outcome = f"refused: {error}"
print(rss("VmHWM:") - before, outcome)
"""


def chatgpt_export(path: Path, megabytes: float) -> int:
    """A ChatGPT-shaped conversations.json of about that size; returns its bytes."""
    conversations, size, n = [], 0, 0
    while size < megabytes * 1e6:
        mapping: dict[str, object] = {}
        parent = None
        for i in range(40):
            node = f"{n}-{i}"
            mapping[node] = {
                "id": node,
                "parent": parent,
                "children": [],
                "message": {
                    "author": {"role": "user" if i % 2 == 0 else "assistant"},
                    "create_time": 1.7e9 + n * 100 + i,
                    "content": {"content_type": "text", "parts": [f"{i}: " + "lorem ipsum " * 30]},
                    "metadata": {},
                },
            }
            parent = node
        conversation = {"title": f"Chat {n}", "mapping": mapping, "current_node": parent}
        size += len(json.dumps(conversation)) + 2
        conversations.append(conversation)
        n += 1
    path.write_text(json.dumps(conversations))
    return path.stat().st_size


def parse_in_own_process(path: Path) -> tuple[int, str]:
    """(peak RSS growth in bytes while parsing, what came of it)."""
    done = subprocess.run(
        [sys.executable, "-c", PEAK, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    grown, outcome = done.stdout.split(" ", 1)
    return int(grown), outcome.strip()


def test_the_upload_limit_lets_the_promised_imports_through() -> None:
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] * 2**20 >= MAX_IMPORT_BYTES  # Streamlit's MB


def densest_file(path: Path) -> int:
    """As many small objects as the check lets through, filling the size limit."""
    count = MAX_IMPORT_CONTAINERS - 1
    value = "x" * ((MAX_IMPORT_BYTES - 2) // count - 10)  # each is {"a": "..."},
    path.write_text("[" + ",".join([json.dumps({"a": value})] * count) + "]")
    return path.stat().st_size


@pytest.mark.parametrize("shape", ["chatgpt", "only-braces", "densest-allowed"])
def test_parsing_a_20_mb_import_takes_memory_bounded_by_its_size(
    tmp_path: Path, shape: str
) -> None:
    path = tmp_path / "conversations.json"
    if shape == "chatgpt":
        size = chatgpt_export(path, MAX_IMPORT_BYTES / 1e6 - 0.5)
    elif shape == "only-braces":  # nothing but empty objects: ~470 MB if parsed whole
        path.write_text("[" + ",".join(["{}"] * (MAX_IMPORT_BYTES // 3 - 1)) + "]")
        size = path.stat().st_size
    else:
        size = densest_file(path)
    grown, outcome = parse_in_own_process(path)
    assert size <= MAX_IMPORT_BYTES
    assert grown < 12 * size, f"{grown / 1e6:.0f} MB while parsing {size / 1e6:.0f} MB"
    if shape == "chatgpt":
        assert grown < 6 * size and outcome.endswith(" messages") and outcome[0] != "0"
    elif shape == "only-braces":
        assert outcome.startswith("refused: The file holds") and "objects and lists" in outcome
    else:
        assert outcome.startswith("refused: Unknown file format")  # parsed, then checked
