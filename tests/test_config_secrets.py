"""Secrets an operator could get wrong: an OIDC cookie secret left as the README's placeholder
(or short) stops the app with a clear message, and `python -m chatbot.prepare` (run by
`make run`) never prints the Redis password."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatbot import prepare
from chatbot.config import ConfigError, Environment
from chatbot.identity import auth_secrets, check_oidc_secrets
from chatbot.services import build_services

README_EXAMPLE = """
[auth]
redirect_uri = "http://localhost:8501/oauth2callback"
cookie_secret = "<a long random string>"
client_id = "<app registration client id>"
client_secret = "<client secret>"
server_metadata_url = "https://login.microsoftonline.com/<tenant id>/v2.0/.well-known/\
openid-configuration"
"""
GOOD = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "q3J0x1u6C8kz2pWm7sA9vF4tY5nB0eRd-Lh_Gi",
    "client_id": "0f8b6c1e-2d4a-4b7e-9c3f-5a6d7e8f9a0b",
    "client_secret": "s~8Q.abcdefghijklmnopqrstuvwxyz0123456",
    "server_metadata_url": "https://login.microsoftonline.com/t/v2.0/.well-known/openid-configuration",
}


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"cookie_secret": "<a long random string>"}, "still a placeholder"),
        ({"cookie_secret": "short-secret"}, "has 12 characters; it needs at least 32"),
        ({"cookie_secret": None}, "missing or still a placeholder"),
        ({"client_id": "<app registration client id>"}, "client_id"),
    ],
    ids=["placeholder", "short", "missing", "other-placeholder"],
)
def test_a_forgeable_or_unfinished_oidc_configuration_is_refused(
    change: dict[str, str | None], said: str
) -> None:
    auth = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    with pytest.raises(ConfigError, match=said):
        check_oidc_secrets(auth)


def test_a_real_oidc_configuration_passes() -> None:
    check_oidc_secrets(GOOD)
    check_oidc_secrets({})  # none in the files: the page checks st.secrets itself


def test_the_app_stops_on_the_readme_example_before_serving_anyone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text(README_EXAMPLE)
    monkeypatch.chdir(tmp_path)
    assert auth_secrets()["cookie_secret"] == "<a long random string>"
    env = Environment({"AUTH_MODE": "oidc", "REDIS_URL": redis_url})
    with pytest.raises(ConfigError, match="cookie_secret"):
        build_services(env)


@pytest.mark.parametrize(
    "url", ["redis://:s3cr3t-pw@127.0.0.1:6399/0", "rediss://app:s3cr3t-pw@cache.example:6380"]
)
def test_prepare_never_prints_the_redis_password(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setenv("REDIS_URL", url)
    assert prepare.main() == 0
    out = capsys.readouterr()
    assert "s3cr3t-pw" not in out.out + out.err
    assert "***" in out.out and url.split("@")[1] in out.out
