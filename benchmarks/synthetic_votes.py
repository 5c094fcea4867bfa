"""Synthetic votes written straight into the tables (bulk inserts): load for export and memory measurements.

Every battle has one round: a question, two answers of a few hundred characters, and a vote. Texts differ per
battle, so nothing is a duplicate unless `duplicate_every` asks for repeats.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, insert

from arena.domain import Outcome, Side, conversation_id
from arena.store.schema import BattleRow, ConversationRow, MessageRow, VoteRow

MODELS = [f"variant-{k}" for k in range(8)]
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


def _battle(n: int, rng: random.Random, start: datetime, duplicate_every: int, rows: Rows) -> None:
    """Add battle `n`'s rows (the battle, two conversations of two messages, the vote) to `rows` by table."""
    battle_id = f"{n:032x}"
    a, b = rng.sample(MODELS, 2)
    when = start + timedelta(seconds=n * 7)
    language = rng.choice(LANGUAGES)
    texts = random.Random(n - n % duplicate_every if duplicate_every else n)
    question = _text(texts, 12)
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
        for role, content in (("user", question), ("assistant", _text(texts, 40))):
            mine = role == "assistant"
            rows["messages"].append(
                {"conversation_id": conv, "turn_index": 0, "role": role, "content": content, "status": "ok"}
                | {"model": model if mine else None, "created_at": when, "language": None if mine else language}
            )
    rows["votes"].append(
        {"battle_id": battle_id, "turn_index": 0, "outcome": rng.choice(OUTCOMES), "anonymous": True, **who}
        | {"created_at": when, "identity_leak": False, "language": language}
    )


def _insert(conn: Connection, table: Any, rows: list[dict[str, object]]) -> None:
    if conn.dialect.name == "sqlite":  # the driver's executemany: several times faster for bulk load
        names = list(rows[0])
        sql = f"INSERT INTO {table.__tablename__} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
        conn.exec_driver_sql(sql, [tuple(_plain(row[n]) for n in names) for row in rows])
    else:
        conn.execute(insert(table), rows)


def fill_votes(engine: Engine, votes: int, *, seed: int = 0, chunk: int = 5000, duplicate_every: int = 0) -> None:
    """Insert `votes` one-round battles with their conversations, four messages and one vote each."""
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    tables = {"battles": BattleRow, "conversations": ConversationRow, "messages": MessageRow, "votes": VoteRow}
    for first in range(0, votes, chunk):
        rows: Rows = {name: [] for name in tables}
        for n in range(first, min(votes, first + chunk)):
            _battle(n, rng, start, duplicate_every, rows)
        with engine.begin() as conn:
            for name, table in tables.items():
                _insert(conn, table, rows[name])
