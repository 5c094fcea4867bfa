"""Two app.py processes sharing one PostgreSQL database, as behind a load balancer with session affinity.

Both start at the same moment on an empty database (so both run the migrations at once), then battles run
through both, one after the other and many at the same time; every vote must be stored exactly once and counted
by the leaderboard.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from gradio_client import Client
from sqlalchemy import text

from arena.domain import VoteFilter
from arena.store.engine import make_engine
from arena.store.migrate import head_revision
from arena.store.repository import Repository
from backends.demo import DemoModels
from benchmarks.postgres import PostgresServer
from tests.support.helpers import ROOT, RunningApp, config_data, start_apps
from tests.support.store_reads import reads

NAMES = ("demo-base", "demo-lora-a", "demo-lora-b")
NOTICE = 3  # outputs of /battle_send and the vote endpoints: pane A, pane B, input box, notice, reveal
RECORDED = "Thanks, your vote is recorded."
VOTES = ("/battle_vote_a", "/battle_vote_b", "/battle_vote_tie", "/battle_vote_both_bad")


@pytest.fixture(scope="module")
def shared_db(postgres: PostgresServer) -> Iterator[str]:
    """An empty PostgreSQL database: the apps create the schema themselves."""
    name = postgres.create_database()
    yield postgres.url(name)
    postgres.drop_database(name)


@pytest.fixture(scope="module")
def apps(
    demo_models: DemoModels, shared_db: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[RunningApp]]:
    """Two app processes (own ports, own data folders) started together on the shared database."""
    data = config_data(demo_models, max_new_tokens=12)
    data["models"] = [m for m in data["models"] if m["name"] in NAMES]
    data["arena"]["limits"] = {"messages_per_minute": 0, "votes_per_hour": 0}  # every client is 127.0.0.1
    root = tmp_path_factory.mktemp("scale-out")
    running = start_apps(data, [root / "app-1", root / "app-2"], db_url=shared_db)
    yield running
    for app in running:
        app.stop()


def battles(url: str, rounds: int, first_vote: int) -> tuple[str, list[str]]:
    """One browser session on one app: `rounds` battles, each voted once; its session id and the notices."""
    client = Client(url, verbose=False)
    notices = []
    for n in range(rounds):
        client.predict(f"Question {n} from a voter", api_name="/battle_send")
        notices.append(client.predict(api_name=VOTES[(first_vote + n) % len(VOTES)])[NOTICE])
        client.predict(api_name="/battle_new")
    return client.session_hash, notices


def test_battles_through_two_processes_are_each_stored_once_and_all_counted(
    apps: list[RunningApp], shared_db: str
) -> None:
    assert apps[0].db_url == apps[1].db_url == shared_db
    sessions: dict[str, int] = {}
    for i, app in enumerate(apps):  # one after the other
        session, notices = battles(app.url, rounds=2, first_vote=i)
        assert notices == [RECORDED] * 2
        sessions[session] = 2
    jobs = [(app.url, 2, i) for i in range(3) for app in apps]  # then six sessions at once, three per process
    with ThreadPoolExecutor(len(jobs)) as pool:
        for session, notices in pool.map(lambda job: battles(*job), jobs):
            assert notices == [RECORDED] * 2
            sessions[session] = 2

    engine = make_engine(shared_db)
    repo = Repository(engine)
    votes = reads(repo).votes()
    assert Counter(v.session_id for v in votes) == sessions, "a vote was lost, duplicated or misattributed"
    assert len({(v.battle_id, v.turn_index) for v in votes}) == len(votes) == 16
    for battle_id in {v.battle_id for v in votes}:
        stored = reads(repo).battle(battle_id)
        assert stored is not None and stored.status == "voted" and set(stored.models.values()) <= set(NAMES)
    counted = sum(n for *_, n in repo.pair_outcomes(VoteFilter(include_leaks=True)))
    engine.dispose()
    assert counted == len(votes)

    board = leaderboard(shared_db)
    assert board["votes"] == len(votes)
    assert sum(s["votes"] for s in board["standings"]) == 2 * len(votes)  # each vote counts for both models


def test_the_processes_migrated_the_empty_database_once(apps: list[RunningApp], shared_db: str) -> None:
    engine = make_engine(shared_db)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [head_revision()]
    engine.dispose()
    assert all(app.process.poll() is None for app in apps)


def leaderboard(db_url: str) -> dict[str, Any]:
    """`python -m arena leaderboard --format json` over the shared database (identity leaks included)."""
    cmd = [sys.executable, "-m", "arena", "leaderboard", "--db", db_url, "--format", "json", "--rounds", "20"]
    result = subprocess.run([*cmd, "--include-leaks"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    board: dict[str, Any] = json.loads(result.stdout)
    return board


def test_app_logs_have_no_tracebacks(apps: list[RunningApp]) -> None:
    for app in apps:
        log = Path(app.log).read_text(encoding="utf-8", errors="replace")
        assert "Traceback" not in log, f"{app.log}:\n{log[-3000:]}"
