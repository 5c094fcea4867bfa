"""Choosing which two models meet in a battle. Pure: the caller passes the random generator."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from arena.errors import NotEnoughModels
from arena.ratings import win_probability

NOT_ENOUGH = "A battle needs at least two available models, and fewer are configured or up."


def pick_pair(weights: Mapping[str, float], rng: random.Random) -> tuple[str, str]:
    """Two different models, drawn in proportion to their weights, in random side order."""
    names = sorted(n for n, w in weights.items() if w > 0)
    if len(names) < 2:
        raise NotEnoughModels(NOT_ENOUGH)
    first = rng.choices(names, weights=[weights[n] for n in names])[0]
    rest = [n for n in names if n != first]
    second = rng.choices(rest, weights=[weights[n] for n in rest])[0]
    return (first, second) if rng.random() < 0.5 else (second, first)


@dataclass(frozen=True)
class SamplingSettings:
    """How `choose_pair` scores the pairs; the defaults sample in proportion to the product of the weights."""

    mode: Literal["weighted", "active"] = "weighted"
    boost_below: int = 30
    boost: float = 3.0
    target_pairs: tuple[tuple[str, str, float], ...] = ()
    active_strength: float = 4.0

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
    if len(names) < 2:
        raise NotEnoughModels(NOT_ENOUGH)
    targets: dict[frozenset[str], float] = {}
    for a, b, multiplier in settings.target_pairs:
        key = frozenset((a, b))
        targets[key] = targets.get(key, 1.0) * multiplier
    scores: dict[tuple[str, str], float] = {}
    for a, b in itertools.combinations(names, 2):
        score = weights[a] * weights[b] * targets.get(frozenset((a, b)), 1.0)
        if battles is not None:
            score *= _boost(battles.get(a, 0), settings) * _boost(battles.get(b, 0), settings)
        if settings.mode == "active":
            score *= _active_factor(a, b, settings, pair_battles, ratings)
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
    pairs = list(probabilities)
    a, b = rng.choices(pairs, weights=list(probabilities.values()))[0]
    return (a, b) if rng.random() < 0.5 else (b, a)


def _boost(n_battles: int, settings: SamplingSettings) -> float:
    return settings.boost if n_battles < settings.boost_below else 1.0


def _active_factor(
    a: str,
    b: str,
    settings: SamplingSettings,
    pair_battles: Mapping[frozenset[str], int] | None,
    ratings: Mapping[str, float] | None,
) -> float:
    """How much a pair's outcome is still worth learning: uncertain under the ratings, and rarely seen."""
    p = 0.5
    if ratings is not None and a in ratings and b in ratings:
        p = win_probability(ratings[a], ratings[b])
    seen = pair_battles.get(frozenset((a, b)), 0) if pair_battles is not None else 0
    # 4p(1-p) is 1 for an even pair; the floor keeps a lopsided pair drawable, so no pair starves.
    uncertainty = max(4.0 * p * (1.0 - p), 1e-6)
    return float((uncertainty / math.sqrt(1.0 + seen)) ** settings.active_strength)
