"""Battle rounds written straight through the repository, for tests that need stored answers to count or close."""

from __future__ import annotations

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
