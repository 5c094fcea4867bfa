"""Synthetic votes written straight into the tables (bulk inserts): load for export and memory measurements.

Every battle has `rounds` rounds (one by default), each a question, two answers of a few hundred characters and a
vote on it: a vote on round k carries k earlier rounds of history. Texts differ per battle, so nothing is a
duplicate unless `duplicate_every` asks for repeats. `votes_database` keeps filled files in benchmarks/.cache, so
the benchmarks that read a million votes build that file once (about six minutes here) and share it.
"""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, insert

from arena.domain import Outcome, Side, conversation_id
from arena.store.schema import BattleRow, ConversationRow, MessageRow, VoteRow

MODELS = [f"variant-{k:02d}" for k in range(20)]
LANGUAGES = ["English", "French", "Chinese", "Korean", None]
OUTCOMES = [Outcome.A.value] * 40 + [Outcome.B.value] * 40 + [Outcome.TIE.value] * 12 + [Outcome.BOTH_BAD.value] * 8
WORDS = [
    "the",
    "a",
    "model",
    "answer",
    "river",
    "light",
    "stone",
    "garden",
    "bread",
    "winter",
    "learns",
    "quickly",
    "slowly",
    "bright",
    "quiet",
]


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choices(WORDS, k=words)).capitalize() + "."


def _plain(value: object) -> object:
    """SQLAlchemy's SQLite storage format for datetimes (naive UTC text), for the raw driver path."""
    if type(value) is datetime:
        return value.replace(tzinfo=None).isoformat(sep=" ")  # every synthetic time is already UTC
    return value


Rows = dict[str, list[dict[str, object]]]


def _battle(n: int, rng: random.Random, start: datetime, duplicate_every: int, rounds: int, rows: Rows) -> None:
    """Add battle `n`'s rows (the battle, two conversations of two messages a round, a vote a round) by table."""
    battle_id = f"{n:032x}"
    a, b = rng.sample(MODELS, 2)
    when = start + timedelta(seconds=n * 7)
    language = rng.choice(LANGUAGES)
    texts = random.Random(n - n % duplicate_every if duplicate_every else n)
    questions = [_text(texts, 12) for _ in range(rounds)]
    who = {"session_id": f"session-{n % 5000}", "ip_hash": None}
    rows["battles"].append(
        {"id": battle_id, "model_a": a, "model_b": b, "anonymous": True, "status": "voted", **who}
        | {"started_at": when, "finished_at": when, "mode": "anonymous", "identity_leak": False, "language": language}
    )
    for side, model in ((Side.A, a), (Side.B, b)):
        conv = conversation_id(battle_id, side)
        rows["conversations"].append(
            {"id": conv, "kind": "battle", "battle_id": battle_id, "side": side.value, "model": model, **who}
            | {"created_at": when}
        )
        for turn, question in enumerate(questions):
            for role, content in (("user", question), ("assistant", _text(texts, 40))):
                mine = role == "assistant"
                rows["messages"].append(
                    {"conversation_id": conv, "turn_index": turn, "role": role, "content": content, "status": "ok"}
                    | {"model": model if mine else None, "created_at": when, "language": None if mine else language}
                )
    for turn in range(rounds):
        rows["votes"].append(
            {"battle_id": battle_id, "turn_index": turn, "outcome": rng.choice(OUTCOMES), "anonymous": True, **who}
            | {"created_at": when + timedelta(seconds=turn), "identity_leak": False, "language": language}
        )


def _insert(conn: Connection, table: Any, rows: list[dict[str, object]]) -> None:
    if conn.dialect.name == "sqlite":  # the driver's executemany: several times faster for bulk load
        names = list(rows[0])
        sql = f"INSERT INTO {table.__tablename__} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
        conn.exec_driver_sql(sql, [tuple(_plain(row[n]) for n in names) for row in rows])
    else:
        conn.execute(insert(table), rows)


def fill_votes(
    engine: Engine, votes: int, *, seed: int = 0, chunk: int = 5000, duplicate_every: int = 0, rounds: int = 1
) -> None:
    """Insert `votes` votes: battles of `rounds` rounds with their conversations, messages and a vote a round."""
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    tables = {"battles": BattleRow, "conversations": ConversationRow, "messages": MessageRow, "votes": VoteRow}
    battles = -(-votes // rounds)
    for first in range(0, battles, chunk):
        rows: Rows = {name: [] for name in tables}
        for n in range(first, min(battles, first + chunk)):
            _battle(n, rng, start, duplicate_every, rounds, rows)
        rows["votes"] = rows["votes"][: max(0, votes - first * rounds)]  # the last battle may be voted in part
        with engine.begin() as conn:
            for name, table in tables.items():
                _insert(conn, table, rows[name])


CACHE = Path(__file__).resolve().parent / ".cache"
FILL_VERSION = 2  # bump when what fill_votes writes changes: cached files of older versions are not reused


def votes_database(votes: int, *, rounds: int = 1) -> Path:
    """A SQLite file holding `votes` synthetic votes (battles of `rounds` rounds), built once and then reused.

    The votes are inserted at schema 0002 and the later migrations run over them, so the vote count tables are
    filled exactly as an upgrade fills them. Readers must not write to the file.
    """
    from arena.store.engine import make_engine
    from arena.store.migrate import upgrade

    path = CACHE / f"votes-{votes}-rounds-{rounds}-v{FILL_VERSION}.db"
    if path.exists():
        return path
    CACHE.mkdir(exist_ok=True)
    partial = path.with_name(f"{path.name}.partial-{os.getpid()}")
    engine = make_engine(f"sqlite:///{partial}")
    upgrade(engine, "0002")
    fill_votes(engine, votes, rounds=rounds)
    upgrade(engine)  # 0003 counts the votes into vote_counts and vote_totals
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    partial.replace(path)
    for leftover in CACHE.glob(f"{partial.name}-*"):  # the WAL and shared-memory files of the partial file
        leftover.unlink(missing_ok=True)
    return path
