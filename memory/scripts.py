"""The Lua scripts, loaded from memory/lua/: each is its shared parts and its own file."""

from __future__ import annotations

from pathlib import Path

from redis.commands.core import Script

from memory.connection import RedisClient

_LUA_DIR = Path(__file__).parent / "lua"
PER_USER = ("common.lua",)  # what every script over a user's keys (KeyLayout.user_keys) needs


def lua_script(client: RedisClient, *files: str, all_or_nothing: bool = False) -> Script:
    """The files joined, registered with `client` (sent once, then run by SHA).
    `all_or_nothing`: a `#!lua` first line, so Redis refuses the whole script up front when it
    is out of memory or read-only instead of letting it stop part way through its writes."""
    text = "".join((_LUA_DIR / name).read_text() for name in files)
    return client.register_script(("#!lua\n" if all_or_nothing else "") + text)
