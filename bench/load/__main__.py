"""`python -m bench.load`: how many people one app instance serves, measured through the real
websocket (issue 31). See bench/README.md, "Load through the websocket".

Starts its own embedded Redis and paced model, then for each load level fresh app instances
started as App Service does, N users who open the page and chat for `--duration` seconds, and
prints Enter -> first token and Enter -> stored (each minus the model's own time), CPU, RSS
per session, threads and Redis commands per second. Last, two instances on the one Redis at
the largest level one instance held, users spread as a load balancer with session affinity
spreads them (new sessions to each instance in turn, staying there). Bounded: every level
stops after its window, every turn after `--turn-timeout`, every level after `--max-turns`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict, replace
from pathlib import Path

from bench.load import profile, report
from bench.load.instances import Backends
from bench.load.model import ModelProcess
from bench.load.stage import Bench, StageResult, StageSpec, run_stage
from bench.server import embedded_redis
from chatbot.presets import DEFAULT_PRESET, load_presets
from memory import ChatMemory, RedisTarget, create_redis_client

INDEX = "loadbench"
RESULTS = Path(__file__).resolve().parents[1] / "results"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__)
    parser.add_argument("--users", default="1,10,50,100,200", help="levels, comma-separated")
    parser.add_argument("--duration", type=float, default=60.0, help="chat window per level, s")
    parser.add_argument("--think", type=float, default=5.0, help="mean pause after a reply, s")
    parser.add_argument("--turn-timeout", type=float, default=60.0)
    parser.add_argument("--max-turns", type=int, default=10_000, help="per level")
    parser.add_argument(
        "--two", default="auto", help="users for the two-instance level: auto (2x the largest "
        "level one instance held), a number, or 0 for none",
    )  # fmt: skip
    parser.add_argument("--profile", default="", help="levels to profile with py-spy, e.g. 100")
    parser.add_argument(
        "--option", action="append", default=[], metavar="NAME=VALUE",
        help="a Streamlit option for the instances, e.g. server.websocketPingInterval=60",
    )  # fmt: skip
    parser.add_argument(
        "--variant", action="append", default=[], metavar="NAME=SCRIPT[,OPTION=VALUE...]",
        help="run each level on this page and options too, interleaved (default: app=app.py); "
        "e.g. nogc=app.py,runner.postScriptGC=false",
    )  # fmt: skip
    parser.add_argument(
        "--embeddings", choices=("remote", "offline"), default="remote",
        help="remote: the model server's /v1/embeddings, as a deployment uses Azure OpenAI's; "
        "offline: the built-in model inside each instance, as `make run` does",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, default=RESULTS / "load.json")
    return parser.parse_args(argv)


def _levels(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def _options(pairs: list[str]) -> tuple[str, ...]:
    options: list[str] = []
    for pair in pairs:
        name, _, value = pair.partition("=")
        options += [f"--{name.strip()}", value.strip()]
    return tuple(options)


def _variants(texts: list[str]) -> list[tuple[str, str, tuple[str, ...]]]:
    """(name, script, Streamlit options) of each variant."""
    variants = []
    for text in texts or ["app=app.py"]:
        name, _, rest = text.partition("=")
        script, *pairs = rest.split(",")
        variants.append((name.strip(), script.strip() or "app.py", _options(pairs)))
    return variants


def _two_users(choice: str, rows: list[report.Figures]) -> int:
    """2x the largest level one instance held (of the first variant), else 2x the smallest."""
    if choice != "auto":
        return int(choice)
    first = [f for f in rows if f.variant == rows[0].variant and f.instances == 1]
    held = [f.users for f in first if f.held]
    return 2 * max(held) if held else 2 * min((f.users for f in first), default=0)


def _print_profile(result: StageResult) -> None:
    for path in result.profiles:
        samples, top = profile.hotspots(path)
        busy = profile.gil_share(samples, result.spec.duration)
        rows = [[h.function[:90], f"{100 * h.inclusive:.1f}", f"{100 * h.own:.1f}"] for h in top]
        title = f"PROFILE {path.name}: the GIL was held {100 * busy:.0f}% of the window"
        print(report.table(title, ["function", "incl %", "self %"], rows))


async def _run(args: argparse.Namespace, bench: Bench) -> list[StageResult]:
    base = StageSpec(
        users=1, duration=args.duration, think=args.think, turn_timeout=args.turn_timeout,
        max_turns=args.max_turns,
    )  # fmt: skip
    profiled = set(_levels(args.profile))
    results: list[StageResult] = []
    rows: list[report.Figures] = []
    levels = [(users, 1) for users in _levels(args.users)]
    while levels:
        users, instances = levels.pop(0)
        for name, script, options in _variants(args.variant):
            spec = replace(
                base, users=users, instances=instances, profile=users in profiled, variant=name
            )
            backends = replace(
                bench.backends, script=script, options=bench.backends.options + options
            )
            result = await run_stage(
                spec, replace(bench, backends=backends), f"l{users}x{instances}-{name}"
            )
            results.append(result)
            rows.append(report.figures(result))
            print(
                report.latency_table(rows[-1:]), "\n", report.resources_table(rows[-1:]), flush=True
            )
            _print_profile(result)
        if not levels and instances == 1 and (two := _two_users(args.two, rows)) > 0:
            levels.append((two, 2))
    print("\n" + report.latency_table(rows) + "\n\n" + report.resources_table(rows) + "\n")
    for name, _, _ in _variants(args.variant):
        mine = [f for f in rows if f.variant == name]
        print("\n".join(f"{name}: {line}" for line in report.verdicts(mine)))
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    system = load_presets()[DEFAULT_PRESET].instruction()
    with embedded_redis() as server, ModelProcess() as model:
        client = create_redis_client(RedisTarget(url=server.url))
        memory = ChatMemory(client, default_system=system, index_name=INDEX)  # index first
        backends = Backends(
            server.url, model.base_url, INDEX, server.data_dir, _options(args.option),
            remote_embeddings=args.embeddings == "remote",
        )  # fmt: skip
        bench = Bench(backends, model, memory, client, server.pid() or 0, RESULTS)
        results = asyncio.run(_run(args, bench))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    document = [asdict(report.figures(result)) for result in results]
    args.json.write_text(json.dumps({"argv": sys.argv[1:], "levels": document}, indent=1))
    print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
