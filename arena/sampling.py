"""Choosing which two models meet in a battle. Pure: the caller passes the random generator."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Literal

from arena.errors import NotEnoughModels
from arena.ratings import DEFAULT_PRIOR, win_probability

NOT_ENOUGH = "A battle needs at least two available models, and fewer are configured or up."
NATS_PER_POINT = math.log(10) / 400
"""Rating points to natural-log strength, on the scale 400 / base 10 that the leaderboard uses."""
ACTIVE_FLOOR = 1e-3
"""In active mode no pair's factor falls below this share of the most wanted pair's, so nothing starves."""


def require_two(names: Collection[str]) -> None:
    """Raise the user's sentence when fewer than two models can battle."""
    if len(set(names)) < 2:
        raise NotEnoughModels(NOT_ENOUGH)


@dataclass(frozen=True)
class SamplingSettings:
    """How `choose_pair` scores the pairs; the defaults sample in proportion to the product of the weights."""

    mode: Literal["weighted", "active"] = "weighted"
    boost_below: int = 30  # a model with fewer battles than this (when `battles` is given) ...
    boost: float = 3.0  # ... multiplies the score of each of its pairs by this
    target_pairs: tuple[tuple[str, str, float], ...] = ()  # (model, model, multiplier), in either order
    active_strength: float = 4.0  # exponent of the active factor; 0 is the weighted distribution

    def __post_init__(self) -> None:
        if self.mode not in ("weighted", "active"):
            raise ValueError(f"Unknown sampling mode {self.mode!r}: expected 'weighted' or 'active'.")
        if self.boost <= 0 or self.boost_below < 0 or self.active_strength < 0:
            raise ValueError("The boost must be positive, and boost_below and active_strength not negative.")
        if any(m <= 0 for _, _, m in self.target_pairs):
            raise ValueError("A target pair's multiplier must be positive; give an unwanted model weight 0 instead.")


DEFAULT_SETTINGS = SamplingSettings()
"""Weighted sampling with the default boost for new models."""


def pair_probabilities(
    weights: Mapping[str, float],
    *,
    settings: SamplingSettings = DEFAULT_SETTINGS,
    battles: Mapping[str, int] | None = None,
    pair_battles: Mapping[frozenset[str], int] | None = None,
    ratings: Mapping[str, float] | None = None,
) -> dict[tuple[str, str], float]:
    """The chance `choose_pair` picks each unordered pair (keys in name order), summing to 1."""
    names = sorted(n for n, w in weights.items() if w > 0)
    require_two(names)
    pairs = list(itertools.combinations(names, 2))
    targets: dict[frozenset[str], float] = {}
    for a, b, multiplier in settings.target_pairs:
        key = frozenset((a, b))
        targets[key] = targets.get(key, 1.0) * multiplier
    active = (
        _active_factors(pairs, settings.active_strength, pair_battles, ratings) if settings.mode == "active" else {}
    )
    scores: dict[tuple[str, str], float] = {}
    for a, b in pairs:
        score = weights[a] * weights[b] * active.get((a, b), 1.0)
        if targets:
            score *= targets.get(frozenset((a, b)), 1.0)
        if battles is not None:
            score *= _boost(battles.get(a, 0), settings) * _boost(battles.get(b, 0), settings)
        scores[(a, b)] = score
    total = math.fsum(scores.values())
    return {pair: score / total for pair, score in scores.items()}


def choose_pair(
    weights: Mapping[str, float],
    rng: random.Random,
    *,
    settings: SamplingSettings = DEFAULT_SETTINGS,
    battles: Mapping[str, int] | None = None,
    pair_battles: Mapping[frozenset[str], int] | None = None,
    ratings: Mapping[str, float] | None = None,
) -> tuple[str, str]:
    """One pair drawn from `pair_probabilities`, in random side order."""
    probabilities = pair_probabilities(
        weights, settings=settings, battles=battles, pair_battles=pair_battles, ratings=ratings
    )
    a, b = rng.choices(list(probabilities), weights=list(probabilities.values()))[0]
    return (a, b) if rng.random() < 0.5 else (b, a)


def _boost(n_battles: int, settings: SamplingSettings) -> float:
    return settings.boost if n_battles < settings.boost_below else 1.0


def _active_factors(
    pairs: list[tuple[str, str]],
    strength: float,
    pair_battles: Mapping[frozenset[str], int] | None,
    ratings: Mapping[str, float] | None,
) -> dict[tuple[str, str], float]:
    """`(4 p (1 - p) / sqrt(1 + n)) ** strength` per pair, floored at ACTIVE_FLOOR of the largest.

    n is the pair's battles so far; p the chance that one side wins, averaged over the ratings' uncertainty as
    estimated from `pair_battles` (without them the ratings are taken as exact).
    """
    ratings = ratings or {}
    counts = pair_battles or {}
    variances = _rating_variances(counts, ratings) if pair_battles is not None else None
    logs: dict[tuple[str, str], float] = {}
    for a, b in pairs:
        spread = 0.0
        if variances is not None:
            spread = variances.get(a, 1 / DEFAULT_PRIOR) + variances.get(b, 1 / DEFAULT_PRIOR)
        # Probit approximation of E[sigmoid(gap)] for an uncertain gap: a pair whose ratings rest on few votes counts
        # as close, so that a lucky early streak does not make a model look settled and starve it. With the plain p
        # the benchmark's active arm ranked worse than uniform sampling over its first few hundred votes.
        gap = _gap(a, b, ratings) / math.sqrt(1 + math.pi * spread / 8)
        seen = counts.get(frozenset((a, b)), 0)
        logs[(a, b)] = strength * (_log_4pq(gap) - 0.5 * math.log1p(seen))
    # Logs, relative to the best pair: the raw factors underflow with a strong setting and many battles.
    best = max(logs.values())
    return {pair: max(math.exp(value - best), ACTIVE_FLOOR) for pair, value in logs.items()}


def _rating_variances(pair_battles: Mapping[frozenset[str], int], ratings: Mapping[str, float]) -> dict[str, float]:
    """Approximate variance (nats squared) of each model's log-strength: one over its Fisher information."""
    information: dict[str, float] = {}
    for pair, n in pair_battles.items():
        a, b = pair
        p = win_probability(ratings[a], ratings[b]) if a in ratings and b in ratings else 0.5
        for model in (a, b):
            information[model] = information.get(model, DEFAULT_PRIOR) + n * p * (1 - p)
    return {model: 1 / info for model, info in information.items()}


def _gap(a: str, b: str, ratings: Mapping[str, float]) -> float:
    """Rating gap in nats; a missing rating counts as equal to the other."""
    return (ratings[a] - ratings[b]) * NATS_PER_POINT if a in ratings and b in ratings else 0.0


def _log_4pq(gap: float) -> float:
    """log(4 p (1 - p)) for p = sigmoid(gap), exact for any gap: 0 for an even pair, then falling like -|gap|."""
    return math.log(4) - abs(gap) - 2 * math.log1p(math.exp(-abs(gap)))
