"""The hot writes (battle, round, vote) on both dialects: every column as the ORM reads it back, rounds and votes
racing each other, and the statements each write takes."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from arena.domain import BattleMode, Outcome, Reply, ReplyStatus, Side, Voter
from arena.store.engine import make_engine
from arena.store.errors import DuplicateVote, UnknownBattle
from arena.store.hot_writes import hot_writes
from arena.store.repository import Repository
from arena.store.schema import BattleRow, ConversationRow, MessageRow, VoteCountRow, VoteRow, VoteTotalRow
from tests.support.store_reads import reads

T0 = datetime(2024, 3, 1, 23, 59, 30, 123456, tzinfo=UTC)
VOTER = Voter(session_id="s1", ip_hash="h1")
MODELS = {Side.A: "m-a", Side.B: "m-b"}


class Clock:
    """A clock that moves one minute every time it is read."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


def utc(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive UTC datetimes, PostgreSQL aware ones."""
    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=UTC)


def replies(a: Reply, b: Reply) -> dict[Side, Reply]:
    return {Side.A: a, Side.B: b}


def rows(db_url: str, query: Any) -> list[Any]:
    """Rows read back through the ORM by a connection of their own (so only committed data shows)."""
    engine = make_engine(db_url)
    try:
        with Session(engine) as s:
            return list(s.scalars(query))
    finally:
        engine.dispose()


def message(m: MessageRow) -> tuple[Any, ...]:
    return (
        m.conversation_id[-1],
        m.turn_index,
        m.role,
        m.content,
        m.model,
        m.status,
        m.error,
        m.ttft_ms,
        m.total_ms,
        m.token_count,
        m.generation_params,
        utc(m.created_at),
        m.language,
    )


def test_every_column_is_stored_as_the_orm_reads_it(db_url: str) -> None:
    clock = Clock()
    repo = Repository(make_engine(db_url), clock=clock)
    battle_id = "b" * 32
    repo.create_battle(battle_id=battle_id, models=MODELS, voter=VOTER, mode=BattleMode.NAMED, language="French")
    created = clock.now
    [battle] = rows(db_url, select(BattleRow))
    assert (battle.id, battle.model_a, battle.model_b, battle.anonymous, battle.status, battle.mode) == (
        battle_id,
        "m-a",
        "m-b",
        False,
        "open",
        "named",
    )
    assert (battle.session_id, battle.ip_hash, utc(battle.started_at), battle.finished_at) == (
        "s1",
        "h1",
        created,
        None,
    )
    assert (battle.identity_leak, battle.language) == (False, "French")
    conversations = rows(db_url, select(ConversationRow).order_by(ConversationRow.id))
    assert [
        (c.id, c.kind, c.battle_id, c.side, c.model, c.session_id, c.ip_hash, utc(c.created_at)) for c in conversations
    ] == [
        (f"{battle_id}-a", "battle", battle_id, "a", "m-a", "s1", "h1", created),
        (f"{battle_id}-b", "battle", battle_id, "b", "m-b", "s1", "h1", created),
    ]

    a = Reply(text="réponse A", status=ReplyStatus.OK, ttft_ms=12.5, total_ms=80.0, tokens=7)
    b = Reply(text="rép", status=ReplyStatus.STOPPED, error="stopped by the voter", tokens=0)
    params = {Side.A: {"temperature": 0.7, "stop": ["</s>"]}, Side.B: {}}
    repo.record_battle_turn(
        battle_id=battle_id,
        turn_index=0,
        user_text="Bonjour ?",
        replies=replies(a, b),
        params=params,
        language="French",
    )
    asked = clock.now
    assert repo.close_open_battles(id_prefix="b") == 1
    # a regenerated round reopens the closed battle, keeps the replaced answers (superseded) and flags the leak
    new_a = Reply(text="autre", status=ReplyStatus.STREAMING)
    repo.record_battle_turn(
        battle_id=battle_id,
        turn_index=0,
        user_text="Bonjour ?",
        replies=replies(new_a, a),
        params=params,
        identity_leak=True,
        regenerated=True,
    )
    again = clock.now
    messages = rows(db_url, select(MessageRow).order_by(MessageRow.id))
    assert [message(m) for m in messages] == [
        ("a", 0, "user", "Bonjour ?", None, "ok", None, None, None, None, None, asked, "French"),
        ("a", 0, "assistant", "réponse A", "m-a", "superseded", None, 12.5, 80.0, 7, params[Side.A], asked, None),
        ("b", 0, "user", "Bonjour ?", None, "ok", None, None, None, None, None, asked, "French"),
        ("b", 0, "assistant", "rép", "m-b", "superseded", "stopped by the voter", None, None, 0, {}, asked, None),
        ("a", 0, "assistant", "autre", "m-a", "error", None, None, None, 0, params[Side.A], again, None),
        ("b", 0, "assistant", "réponse A", "m-b", "ok", None, 12.5, 80.0, 7, {}, again, None),
    ]
    # a user message's parameters are JSON null, not SQL NULL, as the ORM has always stored them
    assert rows(db_url, select(MessageRow.id).where(MessageRow.generation_params.is_(None))) == []
    [battle] = rows(db_url, select(BattleRow))
    assert (battle.status, battle.identity_leak) == ("open", True)
    # an answer that failed closes the battle
    failed = Reply(text="", status=ReplyStatus.ERROR, error="The model is busy.")
    repo.record_battle_turn(battle_id=battle_id, turn_index=1, user_text="?", replies=replies(a, failed), params=params)
    [battle] = rows(db_url, select(BattleRow))
    assert (battle.status, utc(battle.finished_at), battle.identity_leak) == ("errored", clock.now, True)
    assert rows(
        db_url,
        select(MessageRow.error)
        .where(MessageRow.turn_index == 1, MessageRow.role == "assistant")
        .order_by(MessageRow.id),
    ) == [
        None,
        "The model is busy.",
    ]


def test_a_vote_and_its_counts_are_stored_with_the_battle_voted(db_url: str) -> None:
    clock = Clock()
    repo = Repository(make_engine(db_url), clock=clock)
    repo.create_battle(battle_id="v" * 32, models=MODELS, voter=VOTER, mode=BattleMode.SELF_PLAY)
    ok = Reply(text="x", status=ReplyStatus.OK)
    repo.record_battle_turn(
        battle_id="v" * 32, turn_index=0, user_text="q", replies=replies(ok, ok), params={s: {} for s in Side}
    )
    repo.record_vote(
        battle_id="v" * 32, turn_index=0, outcome=Outcome.TIE, anonymous=True, voter=VOTER, identity_leak=True
    )
    voted_at = clock.now  # 2 March, 00:02 UTC: counted under that day
    [vote] = rows(db_url, select(VoteRow))
    assert (vote.battle_id, vote.turn_index, vote.outcome, vote.anonymous, vote.session_id, vote.ip_hash) == (
        "v" * 32,
        0,
        "tie",
        True,
        "s1",
        "h1",
    )
    assert (utc(vote.created_at), vote.identity_leak, vote.language) == (voted_at, True, None)
    [battle] = rows(db_url, select(BattleRow))
    assert (battle.status, utc(battle.finished_at)) == ("voted", voted_at)
    cell = ("m-a", "m-b", "tie", True, True, "self_play", "unknown")
    [daily] = rows(db_url, select(VoteCountRow))
    [total] = rows(db_url, select(VoteTotalRow))
    key = ("model_a", "model_b", "outcome", "anonymous", "identity_leak", "mode", "language")
    assert (tuple(getattr(daily, k) for k in key), daily.day, daily.count) == (cell, "2024-03-02", 1)
    assert (tuple(getattr(total, k) for k in key), total.count) == (cell, 1)


def test_a_refused_vote_changes_nothing(db_url: str) -> None:
    repo = Repository(make_engine(db_url))
    repo.create_battle(battle_id="r" * 32, models=MODELS, voter=VOTER)
    ok = Reply(text="x", status=ReplyStatus.OK)
    repo.record_battle_turn(
        battle_id="r" * 32, turn_index=0, user_text="q", replies=replies(ok, ok), params={s: {} for s in Side}
    )
    with pytest.raises(UnknownBattle, match="round 1 has no complete answers"):
        repo.record_vote(battle_id="r" * 32, turn_index=1, outcome=Outcome.A, anonymous=True, voter=VOTER)
    with pytest.raises(UnknownBattle):
        repo.record_vote(battle_id="r" * 32, turn_index=0, outcome=Outcome.A, anonymous=True, voter=Voter("s2"))
    with pytest.raises(UnknownBattle):
        repo.record_battle_turn(
            battle_id="u" * 32, turn_index=0, user_text="q", replies=replies(ok, ok), params={s: {} for s in Side}
        )
    repo.record_vote(battle_id="r" * 32, turn_index=0, outcome=Outcome.A, anonymous=True, voter=VOTER)
    with pytest.raises(DuplicateVote):
        repo.record_vote(battle_id="r" * 32, turn_index=0, outcome=Outcome.B, anonymous=True, voter=VOTER)
    assert [v.outcome for v in reads(repo).votes()] == [Outcome.A]
    assert repo.pair_outcomes() == [("m-a", "m-b", Outcome.A, 1)]
    assert rows(db_url, select(MessageRow.id).where(MessageRow.conversation_id.startswith("u"))) == []


def test_racing_votes_on_the_same_rounds_store_one_each_and_count_it_once(repo: Repository) -> None:
    battles, writers = 12, 8
    ok = Reply(text="x", status=ReplyStatus.OK)
    ids = [f"{i:032x}" for i in range(battles)]
    for battle_id in ids:
        repo.create_battle(battle_id=battle_id, models=MODELS, voter=VOTER)
        repo.record_battle_turn(
            battle_id=battle_id, turn_index=0, user_text="q", replies=replies(ok, ok), params={s: {} for s in Side}
        )
    start = threading.Barrier(writers)

    def vote_all(w: int) -> list[str]:
        start.wait()  # every writer races for every round at once
        outcomes = []
        for battle_id in ids[w % battles :] + ids[: w % battles]:
            voter = VOTER if w % 4 else Voter("someone else")
            try:
                repo.record_vote(battle_id=battle_id, turn_index=0, outcome=Outcome.B, anonymous=True, voter=voter)
                outcomes.append("stored")
            except DuplicateVote:
                outcomes.append("duplicate")
            except UnknownBattle:
                outcomes.append("unknown")
        return outcomes

    with ThreadPoolExecutor(writers) as pool:
        results = Counter(o for outcomes in pool.map(vote_all, range(writers)) for o in outcomes)
    assert results == {"stored": battles, "duplicate": battles * (writers - 2 - 1), "unknown": battles * 2}
    assert len(reads(repo).votes()) == battles
    assert repo.pair_outcomes() == [("m-a", "m-b", Outcome.B, battles)]


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_on_postgresql_each_hot_write_is_one_statement(db_url: str) -> None:
    engine = make_engine(db_url)
    repo = Repository(engine)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    ok = Reply(text="x", status=ReplyStatus.OK)
    repo.create_battle(battle_id="p" * 32, models=MODELS, voter=VOTER)
    repo.record_battle_turn(
        battle_id="p" * 32, turn_index=0, user_text="q", replies=replies(ok, ok), params={s: {} for s in Side}
    )
    repo.record_battle_turn(
        battle_id="p" * 32,
        turn_index=0,
        user_text="q",
        replies=replies(ok, ok),
        params={s: {} for s in Side},
        regenerated=True,
    )
    repo.record_vote(battle_id="p" * 32, turn_index=0, outcome=Outcome.A, anonymous=True, voter=VOTER)
    assert len(statements) == 4
    engine.dispose()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_the_autocommitted_connection_goes_back_to_the_pool_transactional(db_url: str) -> None:
    engine = make_engine(db_url)
    repo = Repository(engine)
    repo.create_battle(battle_id="t" * 32, models=MODELS, voter=VOTER)
    with engine.connect() as conn:  # one thread so far: the pool hands back the connection the write used
        assert conn.connection.dbapi_connection is not None
        assert conn.connection.dbapi_connection.autocommit is False
        conn.execute(select(BattleRow.id))
        conn.rollback()
    engine.dispose()


def test_other_databases_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="SQLite or PostgreSQL, not mysql"):
        hot_writes("mysql")


def test_a_value_the_driver_cannot_take_fails_its_own_write_before_it_is_queued(db_url: str) -> None:
    from datetime import date

    repo = Repository(make_engine(db_url))
    repo.create_battle(battle_id="p" * 32, models=MODELS, voter=VOTER)
    ok = Reply(text="x", status=ReplyStatus.OK)
    batches = getattr(repo._writer, "batches", None)
    with pytest.raises(TypeError):  # JSON cannot hold a date: converted in this thread, never in a shared batch
        repo.record_battle_turn(
            battle_id="p" * 32,
            turn_index=0,
            user_text="q",
            replies=replies(ok, ok),
            params={Side.A: {"when": date(2026, 1, 1)}, Side.B: {}},
        )
    assert getattr(repo._writer, "batches", None) == batches  # nothing reached the writer
    repo.record_battle_turn(
        battle_id="p" * 32, turn_index=0, user_text="q", replies=replies(ok, ok), params={s: {} for s in Side}
    )
    repo.record_vote(battle_id="p" * 32, turn_index=0, outcome=Outcome.A, anonymous=True, voter=VOTER)
    assert [v.outcome for v in reads(repo).votes()] == [Outcome.A]
