"""This project's memory work per render/turn (app.py's calls), and the raw-Redis floor."""

from __future__ import annotations

import redis

from memory import LEGACY_CONVERSATION_ID, ChatMemory, Role, Usage

# The benchmarks time one conversation per user: the legacy one, whose messages carry the
# plain user tag the floor queries by.
CONVERSATION = LEGACY_CONVERSATION_ID


class ProjectApp:
    def __init__(self, memory: ChatMemory, page_size: int) -> None:
        self.memory = memory
        self.page_size = page_size

    def read(self, user_id: str, window: int) -> int:
        """The headline read: one `conversation()` whose page is the window, giving the request
        and its token count in one round trip, no re-encoding."""
        conversation = self.memory.conversation(
            user_id, CONVERSATION, window_size=window, page_size=window
        )
        return len(conversation.window.as_openai()) + conversation.window.token_count

    def render(self, user_id: str) -> int:
        """What app.py's main() reads for one page: the last 50 messages shown, plus the window
        (stored size), system instruction and token metric the sidebar shows."""
        conversation = self.memory.conversation(user_id, CONVERSATION, page_size=self.page_size)
        shown = sum(len(message.content) for message in conversation.recent)
        window = conversation.window
        bars = [window.system.token_count] + [m.token_count for m in window.messages]
        return shown + window.token_count + len(window.as_openai()) + len(bars)

    def turn(self, user_id: str, window: int, prompt: str, reply: str, usage: Usage | None) -> int:
        """Render, store the prompt, assemble the request, store the reply, rerun (render
        again). The model call itself is left out."""
        shown = self.render(user_id)
        self.memory.append(user_id, Role.USER, prompt, conversation_id=CONVERSATION)
        request = self.memory.context_window(user_id, CONVERSATION, window)
        messages = request.as_openai()
        self.memory.append(
            user_id, Role.ASSISTANT, reply, usage=usage, conversation_id=CONVERSATION
        )
        return shown + len(messages) + request.token_count + self.render(user_id)


class Floor:
    """One raw FT.SEARCH over the project's own index: the cheapest way the index offers to get
    a user's newest N documents; hiredis parses the reply, nothing else runs."""

    def __init__(self, client: redis.Redis, index_name: str) -> None:
        self.client = client
        self.index_name = index_name

    def read(self, tag: str, limit: int) -> int:
        """`tag` is the user's session tag (`memory.keys.user_tag`), computed beforehand."""
        query = f"@session_tag:{{{tag}}}"
        reply = self.client.execute_command(
            "FT.SEARCH", self.index_name, query, "SORTBY", "timestamp", "DESC", "LIMIT", 0, limit
        )
        return len(reply)
