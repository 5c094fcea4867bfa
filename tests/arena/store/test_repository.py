"""Repository round trips on a real database: every test runs on a SQLite file and on PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import inspect, text

from arena.domain import Outcome, Reply, ReplyStatus, Side, VoteFilter, Voter
from arena.store.engine import make_engine
from arena.store.errors import DuplicateVote, UnknownBattle
from arena.store.migrate import head_revision, upgrade
from arena.store.repository import Repository
from benchmarks.postgres import PostgresServer
from tests.support.helpers import ROOT
from tests.support.store_reads import reads

VOTER = Voter(session_id="s1", ip_hash="h1")
MODELS = {Side.A: "m-a", Side.B: "m-b"}
PARAMS = {Side.A: {"temperature": 0.7}, Side.B: {"temperature": 0.9}}


def ok(text: str) -> Reply:
    return Reply(text=text, status=ReplyStatus.OK, ttft_ms=12.5, total_ms=80.0, tokens=7)


def battle_with_turn(repo: Repository, battle_id: str = "b" * 32, *, error: bool = False) -> str:
    repo.create_battle(battle_id=battle_id, models=MODELS, voter=VOTER)
    b = Reply(text="", status=ReplyStatus.ERROR, error="The model is busy.") if error else ok("réponse B")
    repo.record_battle_turn(
        battle_id=battle_id,
        turn_index=0,
        user_text="Bonjour ?",
        replies={Side.A: ok("réponse A"), Side.B: b},
        params=PARAMS,
    )
    return battle_id


def test_migrations_create_the_schema_and_a_second_run_is_a_no_op(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    tables = {"battles", "conversations", "messages", "votes", "vote_counts", "vote_totals", "chat_feedback"}
    assert tables | {"alembic_version"} <= set(inspect(engine).get_table_names())
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [head_revision()]
    engine.dispose()


def test_sqlite_is_tuned(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        cur = raw.cursor()
        assert cur.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert cur.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert cur.execute("PRAGMA busy_timeout").fetchone()[0] == 10000


def test_battle_turn_and_vote_round_trip(repo: Repository) -> None:
    battle_id = battle_with_turn(repo)
    repo.record_vote(battle_id=battle_id, turn_index=0, outcome=Outcome.B, anonymous=True, voter=VOTER)
    stored = reads(repo).battle(battle_id)
    assert stored is not None
    assert stored.models == MODELS and stored.anonymous and stored.status == "voted"
    a = stored.conversations[Side.A]
    assert [(m.role, m.content) for m in a] == [("user", "Bonjour ?"), ("assistant", "réponse A")]
    assert a[1].model == "m-a" and a[1].ttft_ms == 12.5 and a[1].token_count == 7
    assert a[1].generation_params == {"temperature": 0.7}
    assert stored.conversations[Side.B][1].generation_params == {"temperature": 0.9}
    [vote] = reads(repo).votes(battle_id=battle_id)
    assert (vote.outcome, vote.turn_index, vote.ip_hash, vote.session_id) == (Outcome.B, 0, "h1", "s1")


def test_second_vote_on_a_round_is_refused(repo: Repository) -> None:
    battle_id = battle_with_turn(repo)
    repo.record_vote(battle_id=battle_id, turn_index=0, outcome=Outcome.A, anonymous=True, voter=VOTER)
    with pytest.raises(DuplicateVote):
        repo.record_vote(battle_id=battle_id, turn_index=0, outcome=Outcome.B, anonymous=True, voter=VOTER)
    assert len(reads(repo).votes()) == 1


def test_errored_battle_cannot_be_voted_on(repo: Repository) -> None:
    battle_id = battle_with_turn(repo, error=True)
    stored = reads(repo).battle(battle_id)
    assert stored is not None and stored.status == "errored"
    assert stored.conversations[Side.B][1].status == "error"
    with pytest.raises(UnknownBattle):
        repo.record_vote(battle_id=battle_id, turn_index=0, outcome=Outcome.A, anonymous=True, voter=VOTER)
    assert reads(repo).votes() == []


def test_votes_need_a_stored_round_and_the_same_session(repo: Repository) -> None:
    battle_id = battle_with_turn(repo)
    with pytest.raises(UnknownBattle):
        repo.record_vote(battle_id=battle_id, turn_index=1, outcome=Outcome.A, anonymous=True, voter=VOTER)
    with pytest.raises(UnknownBattle):
        repo.record_vote(battle_id="f" * 32, turn_index=0, outcome=Outcome.A, anonymous=True, voter=VOTER)
    with pytest.raises(UnknownBattle):
        repo.record_vote(battle_id=battle_id, turn_index=0, outcome=Outcome.A, anonymous=True, voter=Voter("other"))
    assert reads(repo).votes() == []


def test_chat_round_trip(repo: Repository) -> None:
    repo.create_chat(conversation_id="c" * 32, model="m-a", voter=VOTER)
    repo.record_chat_turn(
        conversation_id="c" * 32, turn_index=0, user_text="你好", reply=ok("안녕"), model="m-a", params={}
    )
    assert [(m.role, m.content) for m in reads(repo).conversation("c" * 32)] == [
        ("user", "你好"),
        ("assistant", "안녕"),
    ]


def test_no_raw_ip_column_anywhere(db_url: str) -> None:
    engine = make_engine(db_url)
    schema = inspect(engine)
    columns = [c["name"] for t in schema.get_table_names() for c in schema.get_columns(t)]
    engine.dispose()
    assert "ip_hash" in columns and not any(c in ("ip", "ip_address", "client_ip") for c in columns)


def test_vote_counts_agree_with_the_votes_under_every_filter(repo: Repository) -> None:
    import itertools
    import random as random_module

    from arena.domain import BattleMode

    rng = random_module.Random(4)
    models = ["m1", "m2", "m3", "m4"]
    for i in range(60):
        a, b = rng.sample(models, 2)
        mode = rng.choice(list(BattleMode))
        battle_id = f"{i:032x}"
        repo.create_battle(battle_id=battle_id, models={Side.A: a, Side.B: b}, voter=VOTER, mode=mode)
        for turn in range(rng.randint(1, 2)):
            replies = {Side.A: ok("x"), Side.B: ok("y")}
            repo.record_battle_turn(battle_id=battle_id, turn_index=turn, user_text="q", replies=replies, params=PARAMS)
            repo.record_vote(
                battle_id=battle_id,
                turn_index=turn,
                outcome=rng.choice(list(Outcome)),
                anonymous=mode is not BattleMode.NAMED and turn == 0,
                voter=VOTER,
                identity_leak=rng.random() < 0.2,
                language=rng.choice(["French", "English", None]),
            )
    for anonymous_only, leaks, self_play, language in itertools.product(
        [True, False], [True, False], [True, False], [None, "French", "English"]
    ):
        f = VoteFilter(
            include_named=not anonymous_only,
            include_leaks=leaks,
            include_self_play=self_play,
            languages=None if language is None else [language],
        )
        assert sorted(repo.pair_outcomes(f)) == sorted(reads(repo).pair_outcomes_from_votes(f)), f
    assert sum(
        n for *_, n in repo.pair_outcomes(VoteFilter(include_named=True, include_leaks=True, include_self_play=True))
    ) == len(reads(repo).votes())


def test_dated_counts_match_whole_utc_days(repo: Repository) -> None:
    from datetime import UTC, datetime, timedelta

    battle_with_turn(repo)
    repo.record_vote(
        battle_id="b" * 32, turn_index=0, outcome=Outcome.A, anonymous=True, voter=VOTER, language="French"
    )
    today = datetime.now(UTC).date()
    assert repo.pair_outcomes(VoteFilter(since=today, until=today + timedelta(days=1))) == reads(
        repo
    ).pair_outcomes_from_votes(VoteFilter(since=today, until=today + timedelta(days=1)))
    assert repo.pair_outcomes(VoteFilter(since=today + timedelta(days=1))) == []
    assert repo.pair_outcomes(VoteFilter(until=today)) == []
    assert repo.pair_outcomes() == [("m-a", "m-b", Outcome.A, 1)]
    assert repo.languages() == ["French"]


def test_concurrent_votes_are_each_stored_and_counted_once(repo: Repository) -> None:
    writers, battles_each = 8, 10
    for w in range(writers):
        for i in range(battles_each):
            battle_with_turn(repo, f"{w:016x}{i:016x}")
    start = threading.Barrier(writers)

    def vote_all(w: int) -> None:
        start.wait()  # every writer hits the same vote_counts cells at once
        for i in range(battles_each):
            repo.record_vote(
                battle_id=f"{w:016x}{i:016x}", turn_index=0, outcome=Outcome.A, anonymous=True, voter=VOTER
            )

    with ThreadPoolExecutor(writers) as pool:
        list(pool.map(vote_all, range(writers)))
    assert len(reads(repo).votes()) == writers * battles_each
    assert repo.pair_outcomes() == [("m-a", "m-b", Outcome.A, writers * battles_each)]
    assert repo.pair_outcomes() == reads(repo).pair_outcomes_from_votes()


# imports first, then waits for the go line, so the processes really upgrade at the same moment
MIGRATE = """
import sys
from arena.store.engine import make_engine
from arena.store.migrate import upgrade
engine = make_engine(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
upgrade(engine)
"""


def test_processes_starting_together_migrate_an_empty_postgresql_database_once(postgres: PostgresServer) -> None:
    name = postgres.create_database()
    url = postgres.url(name)
    try:
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", MIGRATE, url],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(3)
        ]
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        # without the advisory lock, all but one fail on a duplicate alembic_version or table
        errors = [proc.communicate(timeout=120)[1] for proc in procs]
        assert [proc.returncode for proc in procs] == [0, 0, 0], errors
        engine = make_engine(url)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [head_revision()]
        engine.dispose()
    finally:
        postgres.drop_database(name)


def test_the_counts_migration_backfills_votes_by_their_utc_day(empty_db_url: str) -> None:
    engine = make_engine(empty_db_url)
    upgrade(engine, "0002")
    late_evening = datetime(2024, 3, 1, 23, 30, tzinfo=UTC)  # already 2 March in Tokyo
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":  # a session zone that is not UTC must not move the day
            conn.execute(text(f"ALTER DATABASE \"{engine.url.database}\" SET timezone TO 'Asia/Tokyo'"))
        conn.execute(
            text(
                "INSERT INTO battles (id, model_a, model_b, anonymous, status, session_id, started_at, mode,"
                " identity_leak) VALUES ('b1', 'm-a', 'm-b', true, 'voted', 's1', :t, 'anonymous', false)"
            ),
            {"t": late_evening},
        )
        conn.execute(
            text(
                "INSERT INTO votes (battle_id, turn_index, outcome, anonymous, session_id, created_at, identity_leak,"
                " language) VALUES ('b1', 0, 'a', true, 's1', :t, false, 'French')"
            ),
            {"t": late_evening},
        )
    engine.dispose()  # the migration's new session takes the database's zone
    upgrade(engine)
    repo = Repository(engine)
    assert repo.pair_outcomes(VoteFilter(since=date(2024, 3, 1), until=date(2024, 3, 2))) == [
        ("m-a", "m-b", Outcome.A, 1)
    ]
    assert repo.pair_outcomes(VoteFilter(languages=["French"])) == reads(repo).pair_outcomes_from_votes(
        VoteFilter(languages=["French"])
    )
    engine.dispose()
