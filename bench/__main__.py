"""`python -m bench [--quick] [--json PATH] [--redis-url URL]`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.config import full_config, quick_config
from bench.runner import run

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "latest.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Memory cost per chat turn: this project vs raw Redis vs the demo's approach.",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, well under a minute")
    parser.add_argument(
        "--json", type=Path, default=DEFAULT_JSON, help=f"where to write results ({DEFAULT_JSON})"
    )
    parser.add_argument(
        "--redis-url",
        help="use this Redis (with RediSearch) instead of starting an embedded one; the run's "
        "data gets its own index names and is deleted afterwards",
    )
    args = parser.parse_args(argv)
    config = quick_config() if args.quick else full_config()
    report = run(config, args.redis_url, args.json)
    return 0 if report else 1


if __name__ == "__main__":
    sys.exit(main())
