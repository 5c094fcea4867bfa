"""Online Elo as the first Chatbot Arena leaderboard computed it: K=4, votes replayed in random order, bootstrap.

Online Elo depends on the order of the votes, which vote counts do not keep: each estimate replays the votes in a
fresh random order (the point estimate is the median of `POINT_ORDERS` orders), and each bootstrap round replays
a resample drawn with replacement. All rounds advance together, one vote position at a time, as numpy rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.random import Generator
from numpy.typing import NDArray

from arena.ratings import PairCounts, Strengths

POINT_ORDERS = 100


Votes = tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float64], NDArray[np.float64]]


def _votes(counts: PairCounts, models: list[str]) -> Votes:
    """The counted votes one by one: side A's index, side B's index, A's score (1, 0 or a half) and the vote's
    weight (1; a fraction where a cell holds part of a vote, e.g. a slight preference's half win and half tie)."""
    index = {name: k for k, name in enumerate(models)}
    a: list[int] = []
    b: list[int] = []
    score: list[float] = []
    weight: list[float] = []
    for (model_a, model_b), cells in counts.items():
        for value, n in zip((1.0, 0.0, 0.5), cells, strict=True):
            whole = math.floor(n + 1e-9)
            parts = [1.0] * whole + ([n - whole] if n - whole > 1e-9 else [])
            a += [index[model_a]] * len(parts)
            b += [index[model_b]] * len(parts)
            score += [value] * len(parts)
            weight += parts
    return np.array(a, dtype=np.intp), np.array(b, dtype=np.intp), np.array(score), np.array(weight)


@dataclass(frozen=True)
class OnlineElo:
    """Online Elo with a fixed K, replayed over random vote orders."""

    k: float = 4.0
    scale: float = 400.0
    base: float = 10.0
    name: str = "elo"
    summary: str = "Online Elo (K=4) replayed in random vote orders, as the first Chatbot Arena."
    has_likelihood: bool = False

    def replay(self, votes: Votes, order: NDArray[np.intp], n: int) -> NDArray[np.float64]:
        """Ratings (rows, models), centred on 0, after replaying the votes `order[row]` in each row."""
        a, b, score, weight = votes
        rows = np.arange(order.shape[0])
        ratings = np.zeros((order.shape[0], n))
        for t in range(order.shape[1]):
            pick = order[:, t]
            i, j = a[pick], b[pick]
            expected = 1.0 / (1.0 + self.base ** ((ratings[rows, j] - ratings[rows, i]) / self.scale))
            step = self.k * weight[pick] * (score[pick] - expected)
            ratings[rows, i] += step
            ratings[rows, j] -= step
        return ratings

    def _strengths(self, ratings: NDArray[np.float64]) -> NDArray[np.float64]:
        return ratings * math.log(self.base) / self.scale

    def fit(self, counts: PairCounts, models: list[str], rng: Generator) -> Strengths:
        """The median over random vote orders."""
        votes = _votes(counts, models)
        if len(votes[0]) == 0:
            return np.zeros(len(models))
        orders = np.argsort(rng.random((POINT_ORDERS, len(votes[0]))), axis=1)
        return self._strengths(np.median(self.replay(votes, orders, len(models)), axis=0))

    def bootstrap(
        self, counts: PairCounts, models: list[str], *, rounds: int, rng: Generator, start: Strengths
    ) -> Strengths:
        """Each round replays a resample of the votes drawn with replacement (`start` is not needed)."""
        votes = _votes(counts, models)
        if len(votes[0]) == 0:
            return np.zeros((rounds, len(models)))
        picks = rng.integers(0, len(votes[0]), size=(rounds, len(votes[0])))
        return self._strengths(self.replay(votes, picks, len(models)))

    def sandwich(self, counts: PairCounts, models: list[str], theta: Strengths) -> Strengths | None:
        """None: online Elo maximises no likelihood, so it has bootstrap intervals only."""
        return None
