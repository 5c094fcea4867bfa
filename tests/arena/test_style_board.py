"""The style-controlled board: a planted preference for long answers is measured and removed from the ratings."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from arena.domain import Outcome
from arena.leaderboard import build_leaderboard
from arena.style import StyleVotes
from arena.style_board import build_style_board

# equally good models that differ only in how long they answer
LENGTH = {"brief": 60, "medium": 150, "verbose": 400}


def style_votes(rows: list[tuple[Any, ...]]) -> StyleVotes:
    """Votes as the repository reads them, from (model_a, model_b, outcome, 4 counts of A, 4 of B) rows."""
    return StyleVotes(
        model_a=[r[0] for r in rows],
        model_b=[r[1] for r in rows],
        outcome=[str(r[2]) for r in rows],
        counts_a=np.array([r[3:7] for r in rows], dtype=np.float64).reshape(len(rows), 4),
        counts_b=np.array([r[7:11] for r in rows], dtype=np.float64).reshape(len(rows), 4),
    )


def rows(n: int = 20_000, *, length_weight: float = 2.0, seed: int = 0) -> list[tuple[Any, ...]]:
    rng = np.random.default_rng(seed)
    names = sorted(LENGTH)
    out: list[tuple[Any, ...]] = []
    for _ in range(n):
        a, b = rng.choice(names, 2, replace=False)
        ta, tb = (int(LENGTH[m] * rng.lognormal(0, 0.3)) for m in (a, b))
        bold_a, bold_b = int(rng.integers(0, 3)), int(rng.integers(0, 3))
        logit = length_weight * (ta - tb) / (ta + tb + 1)  # voters like length; bold counts nothing
        outcome = Outcome.A if rng.random() < 1 / (1 + math.exp(-logit)) else Outcome.B
        out.append((str(a), str(b), outcome, ta, 0, 0, bold_a, tb, 0, 0, bold_b))
    return out


def test_a_planted_length_preference_is_measured_and_held_equal() -> None:
    data = rows()
    board = build_style_board(style_votes(data))
    assert board.votes == 20_000
    effects = {e.feature: e for e in board.effects}
    assert effects["length"].lower > 0 and effects["length"].sentence.startswith(
        "An answer 100 tokens longer than its rival's"
    )
    assert effects["bold"].lower < 0 < effects["bold"].upper  # bold was planted to count for nothing
    ratings = [s.rating for s in board.standings]  # equally good once length is held equal: all near 1000
    assert max(ratings) - min(ratings) < 15 and all(abs(r - 1000) < 10 for r in ratings), board.standings
    assert all(s.upper - s.lower < 40 for s in board.standings)
    assert effects["headers"].sentence == "No two answers differed in markdown headers: its effect is not measured."

    plain = build_leaderboard([(r[0], r[1], r[2], 1) for r in data], rounds=200)
    assert [s.model for s in plain.standings] == ["verbose", "medium", "brief"]
    assert [s.rank for s in plain.standings] == [1, 2, 3]  # without style control, length looks like quality
    plain_ratings = [s.rating or 0.0 for s in plain.standings]
    assert max(plain_ratings) - min(plain_ratings) > 100


def test_no_votes_with_style_is_an_empty_board() -> None:
    board = build_style_board(style_votes([("x", "x", Outcome.A, 1, 0, 0, 0, 1, 0, 0, 0)]))
    assert build_style_board(style_votes([])).standings == []
    assert board.standings == [] and board.effects == [] and board.votes == 0


def test_one_vote_separates_nobody() -> None:
    board = build_style_board(style_votes([("x", "y", "a", 100, 0, 0, 0, 20, 0, 0, 0)]))
    assert [s.rank for s in board.standings] == [1, 1]
    assert all(s.upper - s.lower > 400 for s in board.standings)
