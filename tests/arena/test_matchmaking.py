"""Active sampling weighs pairs by the ratings the config names: the leaderboard's, or the style-controlled ones."""

from __future__ import annotations

import random

import pytest

from arena.config import AppConfig
from arena.domain import Outcome
from arena.matchmaking import Matchmaker, PairOutcomes


def configured(config: AppConfig, ratings: str) -> AppConfig:
    sampling = config.arena.sampling.model_copy(update={"mode": "active", "ratings": ratings})
    return config.model_copy(update={"arena": config.arena.model_copy(update={"sampling": sampling})})


def test_style_ratings_replace_the_plain_ones_once_per_refresh(demo_config: AppConfig) -> None:
    names = [m.name for m in demo_config.models]
    votes: PairOutcomes = [(names[0], names[1], Outcome.A, 40), (names[1], names[2], Outcome.A, 40)]
    calls: list[int] = []

    def style() -> dict[str, float]:
        calls.append(1)
        return {names[0]: 1000.0, names[1]: 1000.0}  # held equal for style, the first two are even

    styled = Matchmaker(configured(demo_config, "style"), random.Random(1), lambda: votes, style_ratings=style)
    plain = Matchmaker(configured(demo_config, "plain"), random.Random(1), lambda: votes, style_ratings=style)
    for _ in range(20):
        styled.next(names)
    assert calls == [1]  # read once, with the votes, not per battle drawn
    ratings = styled._ratings(votes)
    plain_ratings = plain._ratings(votes)
    assert ratings[names[0]] == ratings[names[1]]  # even, as the style-controlled ratings say
    # shifted onto the plain scale (the two models average what they average there); the third keeps its plain one
    assert ratings[names[0]] + ratings[names[1]] == pytest.approx(plain_ratings[names[0]] + plain_ratings[names[1]])
    assert ratings[names[2]] == plain_ratings[names[2]]
    for _ in range(20):
        plain.next(names)
    assert calls == [1]  # plain ratings never ask for the style-controlled ones (nor did the reads above)
    assert plain._ratings(votes)[names[0]] > plain._ratings(votes)[names[1]]
