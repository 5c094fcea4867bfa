"""Choosing which two models meet in a battle. Pure: the caller passes the random generator."""

from __future__ import annotations

import random
from collections.abc import Mapping

from arena.errors import NotEnoughModels


def pick_pair(weights: Mapping[str, float], rng: random.Random) -> tuple[str, str]:
    """Two different models, drawn in proportion to their weights, in random side order."""
    names = sorted(n for n, w in weights.items() if w > 0)
    if len(names) < 2:
        raise NotEnoughModels("A battle needs at least two available models, and fewer are configured or up.")
    first = rng.choices(names, weights=[weights[n] for n in names])[0]
    rest = [n for n in names if n != first]
    second = rng.choices(rest, weights=[weights[n] for n in rest])[0]
    return (first, second) if rng.random() < 0.5 else (second, first)
