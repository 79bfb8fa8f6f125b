"""The README and .env.sample say what the code does: every setting, the two commands."""

from __future__ import annotations

import re
from pathlib import Path

from chatbot.config import SETTINGS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def settings_table() -> str:
    rows = []
    for setting in SETTINGS:
        default = f"`{setting.default}`" if setting.default else ""
        meaning = setting.help.replace("|", "\\|")
        rows.append(f"| `{setting.name}` | {default} | {meaning} |")
    return "\n".join(rows)


def test_readme_lists_every_setting_as_the_registry_says() -> None:
    block = re.search(
        r"<!-- settings-table:start -->\n(.*?)\n<!-- settings-table:end -->", README, re.S
    )
    assert block is not None
    assert block.group(1) == settings_table()


def test_env_sample_lists_every_setting_and_nothing_else() -> None:
    sample = (ROOT / ".env.sample").read_text(encoding="utf-8")
    names = re.findall(r"^([A-Z][A-Z0-9_]*)=", sample, re.M)
    assert sorted(names) == sorted(s.name for s in SETTINGS)


def test_readme_has_the_run_and_test_commands_and_ci_runs_the_test_command() -> None:
    assert "make run" in README and "make test" in README
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^make test$", ci, re.M)
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "python -m pytest" in makefile and "python -m chatbot.devserver" in makefile


def test_readme_sections_are_filled() -> None:
    for section in ("settings-table", "deploy", "bench"):
        body = re.search(rf"<!-- {section}:start -->\n(.*?)<!-- {section}:end -->", README, re.S)
        assert body is not None and len(body.group(1).strip()) > 200, section
    assert "azd up" in README and "azd down" in README
    assert "flat in history" in README.lower() or "history length" in README
