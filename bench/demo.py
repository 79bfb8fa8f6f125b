"""The demo's approach, re-implemented faithfully as the reference: `LLMmemory.py` of the "Use
Azure Managed Redis to store LLM chat history" Streamlit demo, on redisvl's real `MessageHistory`
(`session_tag=<user name>`, the system instruction stored as the user's first message). The
functions keep the demo's names; `rerun()` calls them in the script's order. What it does and
the deviations (o200k_base, no model call) are in bench/README.md.
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

    def read(self, user: str, contextwindow: int) -> int:
        """The system-message look-up and the window read twice, each re-encoded for the token
        metric (no display read, no write)."""
        system = self.get_system_instructions(user)
        return (
            len(system)
            + self.chat_history_tokens(user, contextwindow)
            + self.chat_history_tokens(user, contextwindow)
        )

    def rerun(
        self, user: str, contextwindow: int, prompt: str | None = None, reply: str = ""
    ) -> int:
        """One whole script run: the display read (`on_change=update_text_display()` calls it
        on every rerun), the system message rewrite, the token metric; with `prompt`, a turn."""
        shown = self.update_text_display(user)
        self.update_system_instructions(user)
        tokens = self.chat_history_tokens(user, contextwindow)
        if prompt is not None:
            self.session_manager.add_message({"role": "user", "content": prompt}, session_tag=user)
            shown += len(self.ask_openai_session(user, contextwindow, reply))
        return shown + tokens + self.chat_history_tokens(user, contextwindow)
