"""Pair sampling."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from arena.errors import NotEnoughModels
from arena.sampling import pick_pair


def test_pairs_are_distinct_and_sides_balanced() -> None:
    rng = random.Random(0)
    pairs = [pick_pair({"x": 1.0, "y": 1.0, "z": 1.0}, rng) for _ in range(3000)]
    assert all(a != b for a, b in pairs)
    firsts = Counter(a for a, _ in pairs)
    assert all(900 < firsts[n] < 1100 for n in "xyz")


def test_weights_shift_how_often_a_model_plays() -> None:
    rng = random.Random(0)
    plays = Counter(n for _ in range(3000) for n in pick_pair({"heavy": 4.0, "y": 1.0, "z": 1.0}, rng))
    assert plays["heavy"] > plays["y"] + 500


def test_same_seed_same_pairs() -> None:
    weights = {"x": 1.0, "y": 2.0, "z": 3.0}
    assert [pick_pair(weights, random.Random(5)) for _ in range(5)] == [
        pick_pair(weights, random.Random(5)) for _ in range(5)
    ]


def test_fewer_than_two_models_is_a_sentence() -> None:
    with pytest.raises(NotEnoughModels, match="at least two"):
        pick_pair({"only": 1.0}, random.Random(0))
