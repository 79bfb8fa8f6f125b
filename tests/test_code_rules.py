"""The team's layout rules, checked on the product's source: only ui/state/ touches the
page's session and URL state; Streamlit only in ui/ and app.py; small ui/ modules, short
functions, a thin app.py. Each checker is also shown to catch a breach."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("app.py", "ui", "chatbot", "memory", "prompts")
STATE_PACKAGE = Path("ui/state")
PAGE_STATE = {"session_state", "query_params"}
MAX_UI_MODULE_LINES = 300
MAX_FUNCTION_LINES = 50
MAX_APP_LINES = 80


def product_files() -> Iterator[Path]:
    """Every Python file of the product, relative to the repository."""
    for part in PRODUCT:
        path = ROOT / part
        found = [path] if path.suffix == ".py" else sorted(path.rglob("*.py"))
        yield from (file.relative_to(ROOT) for file in found)


def parsed(path: Path) -> ast.Module:
    return ast.parse((ROOT / path).read_text(encoding="utf-8"), filename=str(path))


def page_state_uses(tree: ast.Module) -> list[int]:
    """Lines that read or write `st.session_state` / `st.query_params` (any alias), or
    import them by name."""
    lines = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in PAGE_STATE
    ]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and {alias.name for alias in node.names} & PAGE_STATE:
            lines.append(node.lineno)
    return sorted(lines)


def imported_modules(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.module:
        return [node.module]
    return []


def streamlit_imports(tree: ast.Module) -> list[int]:
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        and any(m == "streamlit" or m.startswith("streamlit.") for m in imported_modules(node))
    ]


def long_functions(tree: ast.Module, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """`name (lines)` of each function or method longer than `limit` lines, counted from its
    `def` line to its last line (docstring included)."""
    return [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > limit
    ]


def line_count(path: Path) -> int:
    return len((ROOT / path).read_text(encoding="utf-8").splitlines())


# --- the rules ---------------------------------------------------------------------------------


def test_only_ui_state_touches_session_state_and_query_params() -> None:
    breaches = {
        str(path): lines
        for path in product_files()
        if STATE_PACKAGE not in path.parents and (lines := page_state_uses(parsed(path)))
    }
    assert breaches == {}


def test_streamlit_is_imported_only_in_ui_and_app_py() -> None:
    breaches = {
        str(path): lines
        for path in product_files()
        if path.parts[0] not in ("ui", "app.py") and (lines := streamlit_imports(parsed(path)))
    }
    assert breaches == {}


def test_no_ui_module_is_over_300_lines() -> None:
    modules = sorted((ROOT / "ui").rglob("*.py"))
    assert modules, "ui/ has modules"
    too_long = {
        str(path.relative_to(ROOT)): lines
        for path in modules
        if (lines := line_count(path.relative_to(ROOT))) > MAX_UI_MODULE_LINES
    }
    assert too_long == {}


def test_no_function_in_the_product_is_over_50_lines() -> None:
    too_long = {
        str(path): names for path in product_files() if (names := long_functions(parsed(path)))
    }
    assert too_long == {}


def test_app_py_is_at_most_80_lines() -> None:
    assert line_count(Path("app.py")) <= MAX_APP_LINES


# --- each checker catches what it is for -------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "import streamlit as st\nst.session_state['x'] = 1\n",
        "import streamlit\nvalue = streamlit.query_params.get('c')\n",
        "from streamlit import session_state\n",
        "import streamlit as s\nfor key in s.session_state: pass\n",
    ],
)
def test_a_session_state_use_is_found(source: str) -> None:
    assert page_state_uses(ast.parse(source))


@pytest.mark.parametrize(
    "source",
    [
        "import streamlit\n",
        "import streamlit.components.v1 as components\n",
        "from streamlit.delta_generator import DeltaGenerator\n",
        "def f():\n    import streamlit as st\n",
    ],
)
def test_a_streamlit_import_is_found(source: str) -> None:
    assert streamlit_imports(ast.parse(source))


def test_a_module_named_streamlit_something_else_is_not_streamlit() -> None:
    assert not streamlit_imports(ast.parse("import streamlit_extras_unrelated\n"))


def test_a_long_function_or_method_is_found() -> None:
    body = "".join(f"    x{n} = {n}\n" for n in range(50))
    method_body = body.replace("    ", "        ")
    source = f"def long():\n{body}\nclass C:\n    def method(self):\n{method_body}"
    assert long_functions(ast.parse(source)) == ["long (51 lines)", "method (51 lines)"]
    assert long_functions(ast.parse("def short():\n    return 1\n")) == []


def test_importing_app_py_runs_nothing() -> None:
    """No page, no Redis, no model: Streamlit warns when its calls run outside `streamlit
    run`, and a page build would need the (unreachable) Redis."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("STREAMLIT_")},
        "REDIS_URL": "redis://127.0.0.1:9/0",
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-c", "import app; print(app.main.__name__)"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "main"
    assert "ScriptRunContext" not in done.stderr and "streamlit run" not in done.stderr
