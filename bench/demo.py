"""The demo's approach, re-implemented faithfully as the reference.

Source: `LLMmemory.py` of the "Use Azure Managed Redis to store LLM chat history" Streamlit demo
(redis.io/learn/howtos/use-amr-store-llm-chat-history, Azure Managed Redis samples). It keeps every
user's messages in one redisvl session manager (`StandardSessionManager`, renamed
`MessageHistory` in redisvl 0.4+, the class used here) with `session_tag=<user name>`, and stores
the system instruction as the user's first message. What one Streamlit rerun does, in order:

1. `update_text_display()` runs on every rerun (it is passed as `on_change=update_text_display()`,
   i.e. called, not referenced): `get_recent(top_k=5)`;
2. `update_system_instructions()`: `get_recent(top_k=100, raw=True)`, takes `messages[0]` as the
   system message and `HSET`s its content to the selected preset's text;
3. the "Chat history tokens" metric: `get_recent(top_k=contextwindow)`, re-encoded with tiktoken;
4. with a new prompt: `add_message(user)`, then `ask_openai_session()`:
   `get_recent(top_k=contextwindow)[1:]` plus `get_system_instructions()`
   (`get_recent(top_k=100)[0]`), the model call, `add_message(assistant)`;
5. the metric again: `get_recent(top_k=contextwindow)`, re-encoded.

Deviations, all neutral or in the demo's favour, are listed in bench/README.md (o200k_base
instead of cl100k_base; no model call; beyond 100 messages step 2 overwrites an old message).
"""

from __future__ import annotations

from typing import Any

import redis
import tiktoken
from redisvl.extensions.message_history import MessageHistory

from memory.tokens import get_encoding

STANDARD_INSTRUCTION = "You are a helpful assistant."
ENCODING = "o200k_base"


class DemoApp:
    """One process of the demo: a redisvl MessageHistory and a plain redis client, both from
    the URL, as the demo builds them."""

    def __init__(self, redis_url: str, name: str) -> None:
        self.name = name
        get_encoding(ENCODING)  # seed tiktoken's cache offline; the demo then asks tiktoken
        self.session_manager = MessageHistory(name=name, prefix=name, redis_url=redis_url)
        self.redis_client = redis.Redis.from_url(redis_url)

    def close(self) -> None:
        self.redis_client.close()
        self.session_manager._index.disconnect()

    # --- the demo's functions ------------------------------------------------------------

    @staticmethod
    def calculate_tokens(text: list[dict[str, Any]]) -> int:
        encoding = tiktoken.get_encoding(ENCODING)
        tokens_per_message = 3
        tokens_per_name = 1
        num_tokens = 0
        for message in text:
            num_tokens += tokens_per_message
            for key, value in message.items():
                num_tokens += len(encoding.encode(value))
                if key == "name":
                    num_tokens += tokens_per_name
        num_tokens += 3
        return num_tokens

    def get_system_instructions(self, user: str) -> dict[str, Any]:
        messages = self.session_manager.get_recent(top_k=100, session_tag=user)
        return messages[0]

    def update_system_instructions(self, user: str) -> None:
        messages = self.session_manager.get_recent(top_k=100, session_tag=user, raw=True)
        keyname = messages[0]["id"]
        self.redis_client.hset(keyname, "content", STANDARD_INSTRUCTION)

    def update_text_display(self, user: str) -> int:
        usermessages = self.session_manager.get_recent(top_k=5, session_tag=user)[1:]
        return sum(len(message["content"]) for message in usermessages)

    def chat_history_tokens(self, user: str, contextwindow: int) -> int:
        chathistory = self.session_manager.get_recent(
            top_k=contextwindow, as_text=False, session_tag=user
        )
        return self.calculate_tokens(chathistory)

    def ask_openai_session(self, user: str, historylength: int, reply: str) -> list[Any]:
        messages = self.session_manager.get_recent(top_k=historylength, session_tag=user)[1:]
        messages.insert(0, self.get_system_instructions(user))
        self.session_manager.add_message({"role": "assistant", "content": reply}, session_tag=user)
        return messages

    # --- what the benchmark times ----------------------------------------------------------

    def read(self, user: str, contextwindow: int) -> int:
        """The read side the brief names: the system-message look-up and the window read
        twice, each re-encoded for the token metric (no display read, no write)."""
        system = self.get_system_instructions(user)
        return (
            len(system)
            + self.chat_history_tokens(user, contextwindow)
            + self.chat_history_tokens(user, contextwindow)
        )

    def rerun(
        self, user: str, contextwindow: int, prompt: str | None = None, reply: str = ""
    ) -> int:
        """One whole script run; with `prompt`, a turn (steps 1-5 of the module docstring)."""
        shown = self.update_text_display(user)
        self.update_system_instructions(user)
        tokens = self.chat_history_tokens(user, contextwindow)
        if prompt is not None:
            self.session_manager.add_message({"role": "user", "content": prompt}, session_tag=user)
            shown += len(self.ask_openai_session(user, contextwindow, reply))
        return shown + tokens + self.chat_history_tokens(user, contextwindow)
