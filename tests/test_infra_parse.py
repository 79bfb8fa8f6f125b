"""Every template under infra/ parses with the real Bicep grammar, and the files fit together:
what main.bicep deploys, passes and reads exists on the other side. No bicep CLI runs here,
so these are the checks `bicep build` would otherwise make first."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.bicep_tree import MAIN, REPO, REQUIRED, Template, load, walk

TEMPLATES = sorted((REPO / "infra").rglob("*.bicep"))


def deployed(template: Template) -> set[Path]:
    """The template and every module it deploys, transitively."""
    return {template.path}.union(*(deployed(template.module(s)) for s in template.modules))


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(REPO)))
def test_template_parses_without_errors(path: Path) -> None:
    errors = [
        f"line {node.start_point[0] + 1}: {(node.text or b'').decode()[:60]!r}"
        for node in walk(load(path).root)
        if node.type == "ERROR" or node.is_missing
    ]
    assert errors == []


def test_main_deploys_every_template_and_passes_what_each_declares() -> None:
    assert deployed(load(MAIN)) == set(TEMPLATES), "a template no deployment uses"
    for path in TEMPLATES:
        caller = load(path)
        for symbol, (_, passed) in caller.modules.items():
            declared = caller.module(symbol).params
            assert set(passed) - set(declared) == set(), f"{symbol}: undeclared parameters"
            required = {name for name, default in declared.items() if default is REQUIRED}
            assert required - set(passed) == set(), f"{symbol}: required parameters missing"


def test_every_module_output_and_abbreviation_read_exists() -> None:
    for path in TEMPLATES:
        caller, source = load(path), path.read_text()
        for symbol, output in re.findall(r"\b(\w+)\.outputs\.(\w+)", source):
            assert output in caller.module(symbol).outputs, f"{path.name}: {symbol}.{output}"
    abbreviations = json.loads((REPO / "infra" / "abbreviations.json").read_text())
    used = set(re.findall(r"\babbrs\.(\w+)", MAIN.read_text()))
    assert used and used - set(abbreviations) == set()


def test_no_template_reads_keys_or_takes_secrets() -> None:
    for path in TEMPLATES:
        for node in walk(load(path).root):
            function = node.child_by_field_name("function")
            if node.type == "call_expression" and function is not None:
                name = (function.text or b"").decode().rsplit(".", 1)[-1]
                assert not name.startswith("list"), f"{path.name}: {name}() reads keys"
            assert not (node.type == "decorator" and b"secure" in (node.text or b"")), path.name
