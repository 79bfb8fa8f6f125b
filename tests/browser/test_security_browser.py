"""Model output cannot make the browser reach out: a reply that embeds an image pointing at a
local HTTP server is shown in Chromium, streamed and then re-read from Redis, and that server
receives no request. Its links open only on a click, with rel="noopener"."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect
from pytest_httpserver import HTTPServer

from tests.browser.harness import AppServer, OpenPage, StartApp, StreamlitPage, with_fake_model
from tests.support.openai_server import ChatCompletionsServer

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def app(start_app: StartApp, fake_model: ChatCompletionsServer) -> AppServer:
    return start_app(
        with_fake_model(
            fake_model,
        )
    )


def test_an_image_in_a_reply_is_never_fetched(
    app: AppServer, open_page: OpenPage, fake_model: ChatCompletionsServer, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/leak").respond_with_data("GIF89a", content_type="image/gif")
    leak = httpserver.url_for("/leak?q=my+secret+plans")
    fake_model.configure(
        reply=f"Here is a chart: ![chart]({leak}) and a badge [![b]({leak}&b=1)](https://example.com)"
        f'\n\n<img src="{leak}&html=1">\n\n![ref image][r]\n\n[r]: {leak}&ref=1\n\nThe end.'
    )
    page = open_page(app)
    page.send("Show me a chart")
    reply = page.messages.nth(1)
    expect(reply).to_contain_text("The end.")

    def check() -> None:
        expect(reply.locator("img")).to_have_count(0)
        links = reply.locator(f"a[href^='{httpserver.url_for('/leak')}']")
        expect(links).to_have_count(3)  # inline, the badge and the reference: links to click
        for index in range(links.count()):
            assert "noopener" in (links.nth(index).get_attribute("rel") or "")
        page.page.wait_for_timeout(500)  # any image load would have started by now
        assert httpserver.log == [], [request.url for request, _ in httpserver.log]

    check()
    page.reload()  # rendered again from Redis
    expect(page.messages.nth(1)).to_contain_text("The end.")
    reply = page.messages.nth(1)
    check()
    # The server is reachable: the page could have fetched it, and did not.
    started = time.monotonic()
    page.page.evaluate("url => fetch(url, {mode: 'no-cors'})", leak)
    while not httpserver.log and time.monotonic() - started < 5:
        time.sleep(0.05)
    assert len(httpserver.log) == 1


PUT_IN_THE_BOX = """(box, text) => {
  const setter = Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, "value").set;
  setter.call(box, text.replace("LONE", String.fromCharCode(0xd800)));
  box.dispatchEvent(new Event("input", {bubbles: true}));
}"""


def test_a_pasted_lone_surrogate_is_sent_as_a_replacement_character(
    page: StreamlitPage, fake_model: ChatCompletionsServer
) -> None:
    """Issue 25 item 12: a lone surrogate used to drop the connection (invalid UTF-8)."""
    page.chat_input.evaluate(PUT_IN_THE_BOX, "Broken LONE paste")
    assert page.chat_input.input_value() == "Broken \ufffd paste"
    shown = page.messages.count()
    page.act(lambda: page.chat_input.press("Enter"))
    expect(page.messages.nth(shown + 1)).to_be_visible()
    assert fake_model.last_request.messages[-1]["content"] == "Broken \ufffd paste"
    page.reload()
    assert page.transcript()[-2] == ("user", "Broken \ufffd paste")


def test_a_prompt_beyond_what_the_connection_carries_stays_in_the_box_with_a_message(
    page: StreamlitPage, fake_model: ChatCompletionsServer
) -> None:
    """Issue 25 item 12: over 8 MB the connection dropped the prompt, and nothing was said;
    now any prompt over the limit is kept whole in the box and the page says why."""
    size = 9_000_000
    shown = page.messages.count()
    page.chat_input.evaluate(PUT_IN_THE_BOX, "x" * size)
    page.chat_input.press("Enter")
    expect(page.page.get_by_role("alert").filter(has_text="9,000,000 characters")).to_be_visible()
    page.page.get_by_test_id("stChatInputSubmitButton").click()
    page.wait_for_app_idle()
    assert page.chat_input.evaluate("box => box.value.length") == size
    assert fake_model.chat_requests == [] and page.messages.count() == shown
    page.chat_input.fill("Short now")
    page.act(lambda: page.chat_input.press("Enter"))
    expect(page.messages.nth(shown + 1)).to_be_visible()
    expect(page.page.get_by_role("alert").filter(has_text="characters;")).to_have_count(0)
