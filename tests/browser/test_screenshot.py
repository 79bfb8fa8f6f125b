"""The README's screenshot is the real app: `make run`, a short conversation, Chromium.

Every run takes it again (in the test's tmp_path); `make screenshot`
(UPDATE_SCREENSHOT=1) writes it over docs/screenshot.png, which is committed.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from playwright.sync_api import ViewportSize

from tests.browser.harness import OpenPage, StartApp
from tests.support.openai_server import ChatCompletionsServer

pytestmark = pytest.mark.browser

REPO_ROOT = Path(__file__).resolve().parents[2]
README_SCREENSHOT = REPO_ROOT / "docs" / "screenshot.png"
SIZE = ViewportSize(width=1280, height=820)  # a laptop screen's first view
CONVERSATION = [
    (
        "Hi! I'm planning a trip to Lisbon in May. What should I pack?",
        "May in Lisbon is mild, about 17–24 °C. Pack light layers, a jacket for the evenings, "  # noqa: RUF001
        "comfortable shoes for the hills and cobblestones, and sunscreen.",
    ),
    (
        "Which trip did I say I was planning?",
        "Lisbon, in May. So leave the heavy coat at home, but bring a light rain layer.",
    ),
]


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n" and header[12:16] == b"IHDR", path
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def test_the_readme_screenshot_is_the_running_app(
    start_app: StartApp,
    open_page: OpenPage,
    fake_model: ChatCompletionsServer,
    tmp_path: Path,
) -> None:
    fake_model.reset()
    app = start_app(
        {"OPENAI_BASE_URL": fake_model.base_url, "OPENAI_API_KEY": "test", "LLM_MAX_RETRIES": "0"}
    )
    page = open_page(app)
    page.open_settings(False)  # as a new page shows it
    page.page.set_viewport_size(SIZE)
    for prompt, reply in CONVERSATION:
        fake_model.configure(reply=reply)
        page.send(prompt)
    assert page.transcript() == [
        message
        for prompt, reply in CONVERSATION
        for message in (("user", prompt), ("assistant", reply))
    ]

    taken = tmp_path / "readme-screenshot.png"
    page.page.evaluate("() => document.activeElement && document.activeElement.blur()")
    page.page.screenshot(path=taken)
    assert png_size(taken) == (SIZE["width"], SIZE["height"])
    if os.environ.get("UPDATE_SCREENSHOT") == "1":
        README_SCREENSHOT.parent.mkdir(exist_ok=True)
        README_SCREENSHOT.write_bytes(taken.read_bytes())
    # The committed one is of this page at this size (run `make screenshot` to retake it).
    assert png_size(README_SCREENSHOT) == png_size(taken)
    assert "](docs/screenshot.png)" in (REPO_ROOT / "README.md").read_text(encoding="utf-8")
