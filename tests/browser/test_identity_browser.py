"""AUTH_MODE=easyauth in a real browser: App Service's identity headers, mapped into `st.user`
by `server.trustedUserHeaders`, decide whose conversation a browser gets."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from chatbot.identity import EASYAUTH_HEADERS
from memory import ChatMemory
from tests.browser.harness import AppServer, OpenPage, StartApp, StreamlitPage, with_fake_model
from tests.support.conversations import opened_count, opened_messages
from tests.support.openai_server import ChatCompletionsServer

pytestmark = pytest.mark.browser

ALICE = {
    "X-MS-CLIENT-PRINCIPAL-ID": "0b6f1c1e-0000-4000-8000-00000000a11c",
    "X-MS-CLIENT-PRINCIPAL-NAME": "alice@contoso.com",
}
BOB = {
    "X-MS-CLIENT-PRINCIPAL-ID": "5d2e9a7b-0000-4000-8000-000000000b0b",
    "X-MS-CLIENT-PRINCIPAL-NAME": "bob@contoso.com",
}


@pytest.fixture(scope="module")
def app(start_app: StartApp, fake_model: ChatCompletionsServer) -> AppServer:
    return start_app(
        with_fake_model(
            fake_model,
            AUTH_MODE="easyauth",
            WEBSITE_AUTH_ENABLED="True",  # as App Service sets it with Authentication on
            STREAMLIT_SERVER_TRUSTED_USER_HEADERS=json.dumps(EASYAUTH_HEADERS),
        )
    )


def signed_in(page: StreamlitPage, headers: dict[str, str]) -> None:
    expect(page.sidebar).to_contain_text(f"Signed in as {headers['X-MS-CLIENT-PRINCIPAL-NAME']}")
    expect(page.sidebar).to_contain_text(f"User id: {headers['X-MS-CLIENT-PRINCIPAL-ID']}")
    expect(page.combobox("User")).to_have_count(0)  # no demo picker: nobody picks an identity
    expect(page.button("Clear ALL history…")).to_have_count(0)  # not an admin
    expect(page.chat_input).to_be_visible()


def test_each_signed_in_person_gets_their_own_conversation_and_nobody_else_gets_in(
    app: AppServer, open_page: OpenPage, stored: ChatMemory
) -> None:
    alice = open_page(app, headers=ALICE)
    signed_in(alice, ALICE)
    assert alice.transcript() == []
    alice.send("Alice asks")
    assert alice.transcript() == [("user", "Alice asks"), ("assistant", "Echo: Alice asks")]

    bob = open_page(app, headers=BOB)
    signed_in(bob, BOB)
    assert bob.transcript() == []
    bob.send("Bob asks")
    assert bob.transcript() == [("user", "Bob asks"), ("assistant", "Echo: Bob asks")]

    alice.reload()
    signed_in(alice, ALICE)
    assert alice.transcript() == [("user", "Alice asks"), ("assistant", "Echo: Alice asks")]

    # Stored under the principal id, not the name, and nowhere else.
    alice_id, bob_id = ALICE["X-MS-CLIENT-PRINCIPAL-ID"], BOB["X-MS-CLIENT-PRINCIPAL-ID"]
    assert [m.content for m in opened_messages(stored, alice_id)] == [
        "Alice asks",
        "Echo: Alice asks",
    ]
    assert [m.content for m in opened_messages(stored, bob_id)] == ["Bob asks", "Echo: Bob asks"]
    assert opened_count(stored, ALICE["X-MS-CLIENT-PRINCIPAL-NAME"]) == 0

    nobody = open_page(app)
    expect(nobody.page.get_by_role("heading", name="🔒 Sign-in required")).to_be_visible()
    expect(nobody.page.get_by_text("no identity came with your request")).to_be_visible()
    expect(nobody.chat_input).to_have_count(0)
    expect(nobody.messages).to_have_count(0)
    expect(nobody.page.get_by_text("Alice asks")).to_have_count(0)
