"""Synthetic votes written straight into the tables (bulk inserts): load for export and memory measurements.

Every battle has one round: a question, two answers of a few hundred characters, and a vote. Texts differ per
battle, so nothing is a duplicate unless `duplicate_every` asks for repeats.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, insert

from arena.store.schema import BattleRow, ConversationRow, MessageRow, VoteRow

MODELS = [f"variant-{k}" for k in range(8)]
LANGUAGES = ["English", "French", "Chinese", "Korean", None]
OUTCOMES = ["a"] * 40 + ["b"] * 40 + ["tie"] * 12 + ["both_bad"] * 8
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


def fill_votes(engine: Engine, votes: int, *, seed: int = 0, chunk: int = 5000, duplicate_every: int = 0) -> None:
    """Insert `votes` one-round battles with their conversations, four messages and one vote each."""
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for first in range(0, votes, chunk):
        battles, convs, messages, vote_rows = [], [], [], []
        for n in range(first, min(votes, first + chunk)):
            battle_id = f"{n:032x}"
            a, b = rng.sample(MODELS, 2)
            when = start + timedelta(seconds=n * 7)
            language = rng.choice(LANGUAGES)
            source = n - n % duplicate_every if duplicate_every else n
            texts = random.Random(source)
            question = _text(texts, 12)
            battles.append(
                {
                    "id": battle_id,
                    "model_a": a,
                    "model_b": b,
                    "anonymous": True,
                    "status": "voted",
                    "session_id": f"session-{n % 5000}",
                    "ip_hash": None,
                    "started_at": when,
                    "finished_at": when,
                    "mode": "anonymous",
                    "identity_leak": False,
                    "language": language,
                }
            )
            for side, model in (("a", a), ("b", b)):
                conv = f"{battle_id}-{side}"
                convs.append(
                    {
                        "id": conv,
                        "kind": "battle",
                        "battle_id": battle_id,
                        "side": side,
                        "model": model,
                        "session_id": f"session-{n % 5000}",
                        "ip_hash": None,
                        "created_at": when,
                    }
                )
                for role, content in (("user", question), ("assistant", _text(texts, 40))):
                    messages.append(
                        {
                            "conversation_id": conv,
                            "turn_index": 0,
                            "role": role,
                            "content": content,
                            "model": model if role == "assistant" else None,
                            "status": "ok",
                            "created_at": when,
                            "language": language if role == "user" else None,
                        }
                    )
            vote_rows.append(
                {
                    "battle_id": battle_id,
                    "turn_index": 0,
                    "outcome": rng.choice(OUTCOMES),
                    "anonymous": True,
                    "session_id": f"session-{n % 5000}",
                    "ip_hash": None,
                    "created_at": when,
                    "identity_leak": False,
                    "language": language,
                }
            )
        with engine.begin() as conn:
            for table, rows in (
                (BattleRow, battles),
                (ConversationRow, convs),
                (MessageRow, messages),
                (VoteRow, vote_rows),
            ):
                if engine.dialect.name == "sqlite":  # the driver's executemany: several times faster for bulk load
                    names = list(rows[0])
                    sql = (
                        f"INSERT INTO {table.__tablename__} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
                    )
                    conn.exec_driver_sql(sql, [tuple(_plain(row[n]) for n in names) for row in rows])
                else:
                    conn.execute(insert(table), rows)
