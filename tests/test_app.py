"""app.py as a real process on loopback, driven through gradio_client; the SQLite file is checked after."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gradio_client import Client
from gradio_client.client import Job

from arena.domain import Outcome, Side
from arena.leaderboard import build_leaderboard
from arena.store.engine import make_engine
from arena.store.repository import Repository
from arena.ui.leaderboard import battles_chart, win_rate_chart
from backends.demo import DemoModels
from tests.support.helpers import ROOT, RunningApp, config_data, run_app, start_app
from tests.support.store_reads import reads

NAMES = ("demo-base", "demo-lora-a", "demo-lora-b")
# outputs of /battle_send and the vote endpoints: pane A, pane B, input box, notice, reveal, the note by the votes
PANE_A, PANE_B, BOX, NOTICE, REVEAL, VOTE_NOTE = range(6)
NOT_ANONYMOUS = "Further votes in this battle are not anonymous and do not count towards the leaderboard."


def same_text(stored: str, shown: str) -> bool:
    """The stored reply is what the pane shows, up to the whitespace Gradio's display normalises."""
    return stored.split() == shown.split()


def text_of(message: dict[str, Any]) -> str:
    content = message["content"]
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content)


@pytest.fixture(scope="module")
def app(demo_models: DemoModels, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    data = config_data(demo_models, max_new_tokens=200)
    data["models"] = [m for m in data["models"] if m["name"] in NAMES]
    running = start_app(data, tmp_path_factory.mktemp("app"))
    yield running
    running.stop()


def streaming_battle(client: Client, question: str) -> Job:
    """Send `question` to /battle_send; return the job once its first update has arrived (or after 30 s)."""
    job = client.submit(question, api_name="/battle_send")
    deadline = time.monotonic() + 30
    while not job.outputs() and time.monotonic() < deadline:
        time.sleep(0.005)
    return job


def repo_of(app: RunningApp) -> Repository:
    return Repository(make_engine(app.db_url))


def test_blind_battle_end_to_end(app: RunningApp) -> None:
    client = Client(app.url, verbose=False)
    job = client.submit("Quelle est la capitale de la France ?", api_name="/battle_send")
    updates = list(job)
    final = job.result()
    assert len(updates) > 2, "replies should stream in several updates"
    assert all(name not in repr(u) for u in updates for name in NAMES), (
        "a model name reached the client before the vote"
    )
    answer_a, answer_b = text_of(final[PANE_A][-1]), text_of(final[PANE_B][-1])
    assert answer_a and answer_b
    assert all(u[VOTE_NOTE] == "" for u in updates) and final[VOTE_NOTE] == ""
    voted = client.predict(api_name="/battle_vote_b")
    assert voted[NOTICE] == "Thanks, your vote is recorded."
    assert "**Model A** was **demo-" in voted[REVEAL] and "**Model B** was **demo-" in voted[REVEAL]
    assert NOT_ANONYMOUS in voted[VOTE_NOTE]

    [vote] = [v for v in reads(repo_of(app)).votes() if v.session_id == client.session_hash]
    battle = reads(repo_of(app)).battle(vote.battle_id)
    assert battle is not None and battle.status == "voted" and battle.anonymous
    assert vote.outcome.value == "b" and vote.anonymous and vote.ip_hash and "127.0.0.1" not in vote.ip_hash
    assert f"**Model B** was **{battle.models[Side.B]}**" in voted[REVEAL]
    assert battle.conversations[Side.A][0].content == "Quelle est la capitale de la France ?"
    assert same_text(battle.conversations[Side.A][1].content, answer_a)
    assert same_text(battle.conversations[Side.B][1].content, answer_b)
    assert all(m.ttft_ms is not None and m.token_count for m in (battle.conversations[s][1] for s in Side))


def test_vote_before_replies_finish_is_refused_and_second_vote_too(app: RunningApp) -> None:
    client = Client(app.url, verbose=False)
    job = streaming_battle(client, "Raconte une longue histoire.")
    early = client.predict(api_name="/battle_vote_a")
    assert not job.done(), "the round ended before the early vote could be tested"
    assert early[NOTICE] == "Please wait until both answers are finished before voting."
    job.result()
    assert client.predict(api_name="/battle_vote_a")[NOTICE] == "Thanks, your vote is recorded."
    again = client.predict(api_name="/battle_vote_tie")
    assert again[NOTICE] == "You already voted on this round. Ask a follow-up or start a new round."
    mine = [v for v in reads(repo_of(app)).votes() if v.session_id == client.session_hash]
    assert [v.outcome.value for v in mine] == ["a"]


def test_bad_messages_and_empty_votes_get_sentences(app: RunningApp) -> None:
    client = Client(app.url, verbose=False)
    assert client.predict(api_name="/battle_vote_a")[NOTICE] == "Ask a question first: there is nothing to vote on yet."
    assert client.predict("   ", api_name="/battle_send")[NOTICE] == "Please type a message first."
    too_long = client.predict("x" * 201, api_name="/battle_send")[NOTICE]
    assert too_long == "Your message is 201 characters long; the limit is 200. Please shorten it."


def test_new_round_starts_a_fresh_pair(app: RunningApp) -> None:
    client = Client(app.url, verbose=False)
    client.predict("Hello", api_name="/battle_send")
    client.predict(api_name="/battle_vote_a")
    fresh = client.predict(api_name="/battle_new")
    assert fresh[PANE_A] == [] and fresh[PANE_B] == [] and fresh[REVEAL] == "" and fresh[VOTE_NOTE] == ""
    assert client.predict(api_name="/battle_vote_a")[NOTICE] == "Ask a question first: there is nothing to vote on yet."


def test_after_the_reveal_a_note_by_the_votes_says_later_votes_do_not_count(app: RunningApp) -> None:
    client = Client(app.url, verbose=False)
    client.predict("Bonjour", api_name="/battle_send")
    assert NOT_ANONYMOUS in client.predict(api_name="/battle_vote_a")[VOTE_NOTE]
    job = client.submit("Et maintenant ?", api_name="/battle_send")
    follow_up = list(job)
    assert follow_up and all(NOT_ANONYMOUS in u[VOTE_NOTE] for u in follow_up), "the note left while streaming"
    assert NOT_ANONYMOUS in job.result()[VOTE_NOTE]
    second = client.predict(api_name="/battle_vote_tie")
    assert second[NOTICE] == "Thanks, your vote is recorded." and NOT_ANONYMOUS in second[VOTE_NOTE]
    mine = [v for v in reads(repo_of(app)).votes() if v.session_id == client.session_hash]
    assert [(v.turn_index, v.anonymous) for v in mine] == [(0, True), (1, False)]  # what the note says
    assert client.predict(api_name="/battle_new")[VOTE_NOTE] == ""


def test_chat_streams_multi_turn_and_is_stored(app: RunningApp) -> None:
    client = Client(app.url, verbose=False)
    first = client.predict("demo-lora-a", "Bonjour", api_name="/chat_send")
    second = client.predict("demo-lora-a", "Et ensuite ?", api_name="/chat_send")
    assert [m["role"] for m in second[0]] == ["user", "assistant", "user", "assistant"]
    assert text_of(second[0][1]) == text_of(first[0][1])
    cleared = client.predict(api_name="/chat_clear")
    assert cleared[0] == []


def test_bad_config_refuses_to_start_with_one_line(tmp_path: Path, demo_models: DemoModels) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"models:\n  - name: x\n    model: {demo_models.base}\n    temprature: 0.5\n", encoding="utf-8")
    missing = tmp_path / "missing.yaml"
    missing.write_text("models:\n  - name: x\n    model: ./no/such/model\n", encoding="utf-8")
    for config, expected in ((bad, "models[0].temprature: unknown key"), (missing, "'./no/such/model' does not exist")):
        proc = run_app("--config", str(config), "--data-dir", str(tmp_path))
        assert proc.returncode == 2
        lines = proc.stderr.strip().splitlines()
        assert lines[-1].startswith(f"corral: {config}: ") and expected in lines[-1]
        assert "Traceback" not in proc.stderr


def test_demo_start_builds_demo_models_once_and_says_they_are_random(tmp_path: Path) -> None:
    cmd = [sys.executable, "app.py", "--demo", "--data-dir", str(tmp_path), "--port"]
    for attempt in range(2):
        from tests.support.helpers import free_port

        port = free_port()
        log = (tmp_path / f"run{attempt}.log").open("wb")
        proc = subprocess.Popen([*cmd, str(port), "--threads", "1"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            page = _wait_for_page(f"http://127.0.0.1:{port}/config", proc)
            assert "Demo models" in page and "random" in page
            built = (tmp_path / "demo-models" / "corral-demo.json").stat().st_mtime
            if attempt == 0:
                first_build = built
            else:
                assert built == first_build, "the demo models were rebuilt on the second start"
            result = Client(f"http://127.0.0.1:{port}/", verbose=False).predict("Hi", api_name="/battle_send")
            assert text_of(result[PANE_A][-1]) or text_of(result[PANE_B][-1])
        finally:
            proc.terminate()
            proc.wait(timeout=15)
            log.close()
    assert (tmp_path / "corral.db").exists()
    assert oct((tmp_path / "ip-salt.secret").stat().st_mode & 0o777) == "0o600"


def _wait_for_page(url: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "app.py exited early"
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return str(resp.read().decode("utf-8"))
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {timeout} s")


def test_leaderboard_tab_renders_from_the_votes(app: RunningApp) -> None:
    client = Client(app.url, verbose=False)
    client.predict("Bonjour, qui êtes-vous ?", api_name="/battle_send")
    client.predict(api_name="/battle_vote_a")
    status, table, ratings, rates, counts, _ = client.predict("All languages", api_name="/leaderboard")
    assert status.startswith("Computed ") and " vote" in status  # one or more, with the other tests in the module
    assert table["headers"] == ["Rank", "Model", "Rating", "95% interval", "Votes", "Win rate"]
    models = [row[1] for row in table["data"]]
    assert set(models) == set(NAMES)
    assert all(plot is not None for plot in (ratings, rates, counts))
    # `/leaderboard` keeps its one input (the language); `/leaderboard_by` also takes a category and the intervals
    coded, *_ = client.predict("All languages", "Coding", "sandwich", api_name="/leaderboard_by")
    assert " on coding questions" in coded and "(sandwich intervals)" in coded
    # a plain REST caller of the old one-input API (no client library filling defaults) is still answered
    posted = httpx.post(f"{app.url}gradio_api/call/leaderboard", json={"data": ["All languages"]}, timeout=30)
    assert posted.status_code == 200, posted.text
    with httpx.stream("GET", f"{app.url}gradio_api/call/leaderboard/{posted.json()['event_id']}", timeout=60) as done:
        assert "event: complete" in done.read().decode()
    [served_counts] = json.loads(counts["plot"])["data"]
    assert served_counts["texttemplate"] == "%{z}" and served_counts["zmin"] == 0 and "zmid" not in served_counts
    assert lightness(served_counts["colorscale"][0][1]) > lightness(served_counts["colorscale"][-1][1])


def lightness(colour: str) -> float:
    """The mean of a plotly 'rgb(r,g,b)' colour's channels, 0 (black) to 255 (white)."""
    return sum(int(c) for c in colour.removeprefix("rgb(").removesuffix(")").split(",")) / 3


def test_battle_counts_are_sequential_from_light_and_win_rates_diverge_at_even() -> None:
    board = build_leaderboard(
        [("demo-base", "demo-lora-a", Outcome.A, 3), ("demo-lora-a", "demo-lora-b", Outcome.TIE, 1)], rounds=10
    )
    [counts] = battles_chart(board).data
    assert [list(row) for row in counts.z] == board.battles
    assert counts.texttemplate == "%{z}" and counts.zmin == 0 and counts.zmid is None
    scale = [colour for _, colour in counts.colorscale]
    assert lightness(scale[0]) > 240, "0 battles is not (nearly) white"
    assert [lightness(c) for c in scale] == sorted((lightness(c) for c in scale), reverse=True), "not sequential"
    [rates] = win_rate_chart(board).data
    assert (rates.zmin, rates.zmid, rates.zmax) == (0.0, 0.5, 1.0)
    middle = [colour for at, colour in rates.colorscale if at == 0.5]
    assert middle and lightness(middle[0]) > 240, "50% is not the light middle of a diverging scale"
    ends = rates.colorscale[0][1], rates.colorscale[-1][1]
    assert all(lightness(c) < 120 for c in ends) and ends[0] != ends[-1]


def test_a_module_that_is_not_installed_is_looked_for_once() -> None:
    import sys

    from app import remember_missing_modules

    missing = "corral_no_such_module_for_this_test"
    remember_missing_modules((missing, "json"))
    try:
        assert sys.modules[missing] is None  # later imports fail at once, without searching sys.path
        with pytest.raises(ImportError):
            __import__(missing)
        import json

        assert sys.modules["json"] is json  # an installed module is left alone
    finally:
        del sys.modules[missing]
