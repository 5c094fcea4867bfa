"""Battle rounds written straight through the repository, for tests that need stored answers to count or close."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, text

from arena.domain import Reply, Side
from arena.store.repository import Repository


def store_round(
    repo: Repository,
    battle_id: str,
    answers: tuple[Reply, Reply],
    *,
    turn: int = 0,
    text: str = "q",
    language: str | None = None,
) -> None:
    """Store round `turn` of `battle_id`: the question `text` and both sides' answers, with no sampling parameters."""
    a, b = answers
    repo.record_battle_turn(
        battle_id=battle_id,
        turn_index=turn,
        user_text=text,
        replies={Side.A: a, Side.B: b},
        params={Side.A: {}, Side.B: {}},
        language=language,
    )


def stored_before(conn: Connection, now: datetime, conversations: dict[str, str | None]) -> None:
    """Battle b1 and the given conversations (id → battle id, or None for a chat) written with plain SQL, as an
    older release left them: what a migration's backfill test starts from."""
    conn.execute(
        text(
            "INSERT INTO battles (id, model_a, model_b, anonymous, status, session_id, started_at, mode, "
            "identity_leak) VALUES ('b1', 'x', 'y', true, 'open', 's', :now, 'anonymous', false)"
        ),
        {"now": now},
    )
    for conv, battle in conversations.items():
        conn.execute(
            text(
                "INSERT INTO conversations (id, kind, battle_id, side, model, session_id, created_at) "
                "VALUES (:id, :kind, :battle, NULL, 'x', 's', :now)"
            ),
            {"id": conv, "kind": "chat" if battle is None else "battle", "battle": battle, "now": now},
        )
