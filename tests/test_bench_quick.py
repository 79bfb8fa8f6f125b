"""`python -m bench --quick` completes against a real Redis and emits every figure.

Only completeness is asserted (every key present, every number finite), never the targets:
timings depend on the machine running the tests. It runs on the session's shared Redis, so it
also checks the run deleted its own indexes and keys.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import redis

from bench.schema import SCHEMA, problems

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def test_quick_benchmark_emits_every_figure(redis_url: str, tmp_path: Path) -> None:
    results = tmp_path / "quick.json"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--redis-url",
            redis_url,
            "--json",
            str(results),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]

    report = json.loads(results.read_text())
    assert problems(report) == []
    assert set(report) == set(SCHEMA)
    assert report["meta"]["mode"] == "quick"
    assert report["cells"], "no sweep cell was measured"
    assert all(stats["samples"] > 0 for cell in report["cells"] for stats in cell["read"].values())
    assert report["data"]["verified_users"] > 0

    table = completed.stdout
    for heading in (
        "READ SIDE OF A TURN",
        "PAGE RENDER",
        "WHOLE TURN",
        "WRITES",
        "MEMORY",
        "TARGETS",
    ):
        assert heading in table
    assert table.count("PASS") + table.count("FAIL") == len(report["targets"])

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        project_index, demo_index = report["meta"]["project_index"], report["meta"]["demo_index"]
        assert not {project_index, demo_index} & set(client.execute_command("FT._LIST"))
        for name in (project_index, demo_index):
            assert not list(client.scan_iter(match=f"{name}:*", count=1000)), "left keys behind"
    finally:
        client.close()
