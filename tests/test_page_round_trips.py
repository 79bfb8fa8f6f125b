"""What the page asks of Redis, counted on the real server (MONITOR): a rerun is one script
call, and a prompt with its reply two more (begin_turn, finish_turn) besides the renders and
the few calls of the reply in flight (claim, batched appends, end, the page following it).
Recall's own reads (the user's recall scope, its searches) are listed apart; the background
embedder is off, so nothing else writes meanwhile."""

from __future__ import annotations

import pytest
import redis
from streamlit.testing.v1 import AppTest

from memory import Role, new_conversation_id
from tests.support.command_log import CommandLog, commands_during
from tests.test_app import APP, say, stored

RECALL_READS = {"HGET", "FT.SEARCH"}


def app_calls(log: CommandLog, index_name: str, replies: bool = False) -> list[str]:
    """The commands the app sent for this test's data (other clients' left out), recall's
    reads apart (see recall_reads); with `replies`, only those about a reply in flight, else
    only the others."""
    return [
        c.name
        for c in log.sent
        if any(index_name in arg for arg in c.args)
        and c.name not in RECALL_READS
        and any(f"{index_name}:reply:" in arg for arg in c.args) == replies
    ]


def recall_reads(log: CommandLog, index_name: str) -> list[str]:
    """Recall's reads of a turn: the user's scope, then its searches (none when nothing
    earlier is stored outside the window); then the memories' setting and search."""
    sent = [c for c in log.sent if any(index_name in arg for arg in c.args)]
    return [
        c.name + (f" {c.args[1]}" if c.name == "HGET" else "")
        for c in sent
        if c.name in RECALL_READS
    ]


def test_a_rerun_is_one_script_call_and_a_turn_four_more(
    app_env: str, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMBEDDING_PROVIDER", "off")
    memory = stored(redis_client, app_env)
    cid = new_conversation_id()
    for number in range(5):
        memory.append("Luke", Role.USER, f"question {number}", conversation_id=cid)
        memory.append("Luke", Role.ASSISTANT, f"answer {number}", conversation_id=cid)
    app = AppTest.from_file(APP, default_timeout=30).run()  # services built, scripts loaded
    app.query_params.clear()
    first = commands_during(redis_client, app.run)  # no conversation in the URL
    assert app_calls(first, app_env) == ["EVALSHA"] and app.query_params["c"] in (cid, [cid])
    assert len(app.chat_message) == 10
    rerun = commands_during(redis_client, app.run)
    assert app_calls(rerun, app_env) == ["EVALSHA"]  # page_view: page, list, summary state
    say(app, "first")  # the turn scripts loaded (a first EVALSHA is answered NOSCRIPT)
    turn = commands_during(redis_client, lambda: say(app, "one more"))
    # the one run of the turn renders (1), begins the turn (1), reads the page again for the
    # sidebar once the prompt is stored (1), finishes the turn (1) and reads the page as
    # stored to show the reply (1); no rerun after it
    assert app_calls(turn, app_env, replies=False) == ["EVALSHA"] * 5
    # the reply in flight (memory/reply_stream.py): claimed, appended in batches, ended;
    # followed by the page (read, then XREAD while it streams): a few calls, not one a token
    in_flight = app_calls(turn, app_env, replies=True)
    assert 4 <= len(in_flight) <= 12 and in_flight.count("EVALSHA") <= 8
    assert recall_reads(turn, app_env) in (  # recall's, then the memories' (setting, search)
        ["HGET recall_scope", "HGET memory_on", "FT.SEARCH"],
        ["HGET recall_scope", "FT.SEARCH", "HGET memory_on", "FT.SEARCH"],
    )
    assert [m.content for m in memory.messages("Luke", cid)][-2] == "one more"
