"""`python -m bench [--quick] [--json PATH] [--redis-url URL]`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.config import FULL, QUICK
from bench.report import as_json, format_report
from bench.runner import log, run

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "latest.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Memory cost per chat turn: this project vs raw Redis vs the demo's approach.",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, well under a minute")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"(default {DEFAULT_JSON})")
    parser.add_argument(
        "--redis-url",
        help="use this Redis (with RediSearch) instead of an embedded one; the run's data gets "
        "its own index names and is deleted afterwards",
    )
    args = parser.parse_args(argv)
    results = run(QUICK if args.quick else FULL, args.redis_url)
    print(format_report(results))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(as_json(results), indent=1) + "\n")
    log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
