"""What a piece of code made Redis run, read from MONITOR: each command with whether a client
sent it or a Lua script ran it (single server only: MONITOR watches one node)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import redis

from memory import RedisClient


@dataclass(frozen=True)
class Command:
    name: str  # upper case, e.g. "EVALSHA", "DEL"
    args: tuple[str, ...]
    from_script: bool


@dataclass(frozen=True)
class CommandLog:
    commands: tuple[Command, ...]

    @property
    def sent(self) -> list[Command]:
        """What clients sent (one round trip each, pipelines aside)."""
        return [command for command in self.commands if not command.from_script]

    @property
    def scripts(self) -> int:
        return sum(command.name in ("EVALSHA", "EVAL") for command in self.sent)

    def touching(self, key: str) -> list[Command]:
        return [command for command in self.commands if key in command.args]

    def script_runs(self) -> list[list[Command]]:
        """The commands each script call ran (MONITOR logs a script call, then what it ran)."""
        runs: list[list[Command]] = []
        for command in self.commands:
            if not command.from_script and command.name in ("EVALSHA", "EVAL"):
                runs.append([])
            elif command.from_script and runs:
                runs[-1].append(command)
        return runs


def commands_during(
    client: RedisClient, action: Callable[[], object], *, this_client_only: bool = False
) -> CommandLog:
    """Run `action` and return every command Redis ran meanwhile. Ends at a marker ECHO sent
    after it, so nothing of the action is missed; other clients' commands are included unless
    `this_client_only` (then only what `client`'s own connection sent, and every script's
    commands: the suite's other tests may leave threads of their own talking to the server)."""
    assert isinstance(client, redis.Redis), "MONITOR watches a single server"
    pool = client.connection_pool
    monitor_client = redis.Redis(connection_pool=type(pool)(**pool.connection_kwargs))
    marker = uuid.uuid4().hex
    own = str(client.client_info()["addr"]).rsplit(":", 1)[1] if this_client_only else None
    seen: list[Command] = []
    ready = threading.Event()

    def watch() -> None:
        with monitor_client.monitor() as monitor:
            ready.set()
            for entry in monitor.listen():
                words = entry["command"].split(" ")
                name, args = words[0].upper(), tuple(words[1:])
                if name == "ECHO" and args == (marker,):
                    return
                lua = entry["client_type"] == "lua"
                if own is None or lua or entry["client_port"] == own:
                    seen.append(Command(name, args, lua))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    ready.wait(5)  # set once MONITOR answered OK: from then on every command is streamed
    action()
    client.echo(marker)
    watcher.join(10)
    monitor_client.close()
    return CommandLog(tuple(seen))
