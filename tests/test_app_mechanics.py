"""Arena mechanics through gradio_client against a running app with the demo models."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator

import httpx
import pytest
from gradio_client import Client

from arena.domain import VoteFilter
from arena.store.engine import make_engine
from arena.store.repository import Repository
from backends.demo import DemoModels
from tests.support.helpers import RunningApp, config_data, start_app
from tests.support.store_reads import reads
from tests.test_app import NOTICE, PANE_A, PANE_B, REVEAL, VOTE_NOTE, streaming_battle, text_of

NAMES = ("demo-base", "demo-lora-a", "demo-lora-b")


@pytest.fixture(scope="module")
def app(demo_models: DemoModels, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    data = config_data(demo_models, max_new_tokens=120)
    data["models"] = [m for m in data["models"] if m["name"] in NAMES]
    data["arena"]["limits"] = {"messages_per_minute": 12, "votes_per_hour": 30}
    running = start_app(data, tmp_path_factory.mktemp("mechanics"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def self_play_app(demo_models: DemoModels, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    data = config_data(demo_models, max_new_tokens=24)
    data["models"] = [{**m, "self_play": m["name"] == "demo-lora-a"} for m in data["models"] if m["name"] in NAMES]
    data["arena"].update(self_play_rate=1.0, limits={"messages_per_minute": 2, "votes_per_hour": 100})
    running = start_app(data, tmp_path_factory.mktemp("self-play"))
    yield running
    running.stop()


def rows(app: RunningApp, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(app.db_url.removeprefix("sqlite:///")) as conn:
        return list(conn.execute(sql))


def test_named_side_by_side(app: RunningApp) -> None:
    client = Client(app.url, verbose=False)
    final = client.predict("Bonjour !", "demo-lora-a", "demo-lora-b", api_name="/named_send")
    assert "**Model A** was **demo-lora-a**" in final[REVEAL]  # named: shown from the start
    assert text_of(final[PANE_A][-1]) and text_of(final[PANE_B][-1])
    voted = client.predict(api_name="/named_vote_b")
    assert voted[NOTICE] == "Thanks, your vote is recorded."
    assert voted[VOTE_NOTE] == ""  # the rules above the named tab already say none of its votes count
    repo = Repository(make_engine(app.db_url))
    [vote] = [v for v in reads(repo).votes() if v.session_id == client.session_hash]
    battle = reads(repo).battle(vote.battle_id)
    assert battle is not None and battle.mode.value == "named" and not vote.anonymous
    counted = sum(n for *_, n in repo.pair_outcomes())
    assert (
        sum(n for *_, n in repo.pair_outcomes(VoteFilter(include_named=True))) >= counted + 1
    )  # the named vote is left out


def test_regenerate_then_vote(app: RunningApp) -> None:
    client = Client(app.url, verbose=False)
    client.predict("Salut", api_name="/battle_send")
    client.predict(api_name="/battle_regenerate")
    assert client.predict(api_name="/battle_vote_a")[NOTICE] == "Thanks, your vote is recorded."
    refused = client.predict(api_name="/battle_regenerate")
    assert refused[NOTICE] == "You already voted on this round, so it can no longer be regenerated."
    [vote] = [v for v in reads(Repository(make_engine(app.db_url))).votes() if v.session_id == client.session_hash]
    statuses = rows(
        app,
        f"SELECT status FROM messages WHERE conversation_id LIKE '{vote.battle_id}%' "
        "AND role = 'assistant' ORDER BY id",
    )
    assert [s for (s,) in statuses].count("superseded") == 2 and [s for (s,) in statuses].count("ok") == 2


def test_stop_generation_keeps_the_app_and_battle_usable(app: RunningApp) -> None:
    client = Client(app.url, verbose=False)
    job = streaming_battle(client, "Raconte une très longue histoire.")
    client.predict(api_name="/battle_stop")
    deadline = time.monotonic() + 30
    while not job.done() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job.done()
    after = client.predict(api_name="/battle_vote_a")
    assert after[NOTICE] == "Thanks, your vote is recorded.", after[NOTICE]


def test_chat_feedback_and_regenerate(app: RunningApp) -> None:
    client = Client(app.url, verbose=False)
    client.predict("demo-lora-b", "Bonjour", api_name="/chat_send")
    regenerated = client.predict("demo-lora-b", api_name="/chat_regenerate")
    assert len(regenerated[0]) == 2
    done = client.predict("Bad answer", "1", ["wrong", "too long"], "pas terrible", api_name="/chat_feedback")
    assert done[0] == "Thanks for your feedback: answer 1 is rated *Bad answer*."
    feedback = rows(app, "SELECT rating, tags, comment FROM chat_feedback")
    assert ("down", '["wrong", "too long"]', "pas terrible") in feedback
    # rated again by the same session: the same row changes, no second one
    again = client.predict("Good answer", "", [], "", api_name="/chat_feedback")  # no number: the last answer
    assert tuple(again) == ("Thanks for your feedback: answer 1 is rated *Good answer*.", "1")
    after = rows(app, "SELECT rating, tags, comment FROM chat_feedback")
    assert (
        len(after) == len(feedback)
        and ("up", "[]", None) in after
        and ("down", '["wrong", "too long"]', "pas terrible") not in after
    )
    assert client.predict("Good answer", "2", [], "", api_name="/chat_feedback")[0] == (
        "There is no answer 2 here: the answers are numbered 1."
    )


def test_bad_input_is_refused_or_cleaned(app: RunningApp) -> None:
    client = Client(app.url, verbose=False)
    assert client.predict(api_name="/battle_vote_a")[NOTICE] == "Ask a question first: there is nothing to vote on yet."
    huge = client.predict("x" * 1_000_000, api_name="/battle_send")[NOTICE]
    assert huge == "Your message is 1,000,000 characters long; the limit is 200. Please shorten it."
    # a lone surrogate cannot even be encoded by a normal client; a stranger can still send it as a JSON escape
    body = '{"data": ["bon\\ud800jour\\u0007"]}'
    posted = httpx.post(
        app.url + "gradio_api/call/battle_send", content=body, headers={"content-type": "application/json"}
    )
    assert posted.status_code == 200, posted.text
    event = posted.json()["event_id"]
    with httpx.stream("GET", f"{app.url}gradio_api/call/battle_send/{event}", timeout=60) as stream:
        assert "event: complete" in stream.read().decode()
    assert ("bonjour",) in rows(app, "SELECT content FROM messages WHERE role = 'user'")


def test_self_play_and_rate_limit(self_play_app: RunningApp) -> None:
    client = Client(self_play_app.url, verbose=False)
    client.predict("Hello", api_name="/battle_send")
    voted = client.predict(api_name="/battle_vote_a")
    assert voted[REVEAL].count("demo-lora-a") == 2  # the same model on both sides
    assert rows(self_play_app, "SELECT mode, model_a, model_b FROM battles") == [
        ("self_play", "demo-lora-a", "demo-lora-a")
    ]
    client.predict("Again", api_name="/battle_send")
    limited = client.predict("And again", api_name="/battle_send")[NOTICE]
    assert limited.startswith("You are sending messages too fast: the limit is 2 per minute.")
