"""app.py with remote backends: battles through kind tgi and kind openai against backends.serve, and faults."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

import pytest
from gradio_client import Client

from arena.domain import Side
from arena.store.engine import make_engine
from arena.store.repository import Repository
from arena.text import ERROR_MARK
from tests.support.faults import FaultServer
from tests.support.helpers import Process, RunningApp, free_port, start_app
from tests.support.store_reads import reads
from tests.test_app import NOTICE, PANE_A, PANE_B, REVEAL, same_text, text_of

GEN = {"max_new_tokens": 24, "seed": 3, "temperature": 0.8}


@pytest.fixture(scope="module")
def remote_app(serve: Process, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    config = {
        "models": [
            {
                "name": "via-tgi",
                "backend": "tgi",
                "endpoints": [serve.url],
                "template": "chatml",
                "adapter_id": "lora-a",
                "generation": GEN,
            },
            {"name": "via-openai", "backend": "openai", "endpoints": [serve.url], "model": "lora-b", "generation": GEN},
        ]
    }
    app = start_app(config, tmp_path_factory.mktemp("remote-app"))
    yield app
    app.stop()


@pytest.fixture(scope="module")
def faulty_app(serve: Process, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningApp, FaultServer]]:
    fault = FaultServer(mode="validation").start()
    config = {
        "models": [
            {"name": "healthy", "backend": "tgi", "endpoints": [serve.url], "template": "chatml", "generation": GEN},
            {"name": "refuses", "backend": "tgi", "endpoints": [fault.url], "template": "chatml", "generation": GEN},
            {"name": "down", "backend": "openai", "endpoints": [f"http://127.0.0.1:{free_port()}"], "model": "m"},
        ]
    }
    app = start_app(config, tmp_path_factory.mktemp("faulty-app"))
    yield app, fault
    app.stop()
    fault.stop()


def test_battle_through_tgi_and_openai_end_to_end(remote_app: RunningApp) -> None:
    client = Client(remote_app.url, verbose=False)
    job = client.submit("Bonjour, qui es-tu ?", api_name="/battle_send")
    updates = list(job)
    final = job.result()
    assert len(updates) > 2
    assert text_of(final[PANE_A][-1]) and text_of(final[PANE_B][-1])
    voted = client.predict(api_name="/battle_vote_tie")
    assert voted[NOTICE] == "Thanks, your vote is recorded."
    assert "was **via-tgi**" in voted[REVEAL] and "was **via-openai**" in voted[REVEAL]
    repo = Repository(make_engine(remote_app.db_url))
    [vote] = [v for v in reads(repo).votes() if v.session_id == client.session_hash]
    battle = reads(repo).battle(vote.battle_id)
    assert battle is not None and set(battle.models.values()) == {"via-tgi", "via-openai"}
    assert same_text(battle.conversations[Side.A][1].content, text_of(final[PANE_A][-1]))


def test_a_refusing_backend_errors_one_pane_only(faulty_app: tuple[RunningApp, FaultServer]) -> None:
    app, _ = faulty_app
    client = Client(app.url, verbose=False)
    final = client.predict("Hello there", api_name="/battle_send")
    panes = {text_of(final[PANE_A][-1]), text_of(final[PANE_B][-1])}
    error = f"{ERROR_MARK} The conversation is too long for this model. Please start a new round."
    assert error in panes, panes
    assert any(p and p != error for p in panes), "the healthy pane must still answer"
    assert final[NOTICE] == "This round ended with an error, so it cannot be voted on."
    refused = client.predict(api_name="/battle_vote_a")
    assert refused[NOTICE].startswith("This round ended with an error")
    repo = Repository(make_engine(app.db_url))
    battles = [reads(repo).battle(v) for v in _battle_ids(app)]
    assert battles and all(b is not None and b.status == "errored" for b in battles)
    assert reads(repo).votes() == []
    # the app keeps serving: a new round works
    assert client.predict(api_name="/battle_new")[PANE_A] == []


def test_down_models_are_left_out_of_battles_and_marked_in_chat(faulty_app: tuple[RunningApp, FaultServer]) -> None:
    app, _ = faulty_app
    repo = Repository(make_engine(app.db_url))
    client = Client(app.url, verbose=False)
    for _ in range(4):
        client.predict(api_name="/battle_new")
        client.predict("hi", api_name="/battle_send")
    stored = [reads(repo).battle(b) for b in _battle_ids(app)]
    models = {m for b in stored if b is not None for m in b.models.values()}
    assert "down" not in models and models == {"healthy", "refuses"}
    with urllib.request.urlopen(app.url + "config", timeout=10) as resp:
        page = json.loads(resp.read())
    labels = [c[0] for comp in page["components"] for c in comp.get("props", {}).get("choices", []) or []]
    assert "down (unavailable)" in labels and "healthy" in labels
    chat = client.predict("down", "hello?", api_name="/chat_send")
    assert chat[2] == "down is unavailable right now. Please choose another model or try later."


def _battle_ids(app: RunningApp) -> list[str]:
    import sqlite3

    with sqlite3.connect(app.db_url.removeprefix("sqlite:///")) as conn:
        return [row[0] for row in conn.execute("SELECT id FROM battles")]
