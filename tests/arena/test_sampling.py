"""Pair sampling."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from arena.errors import NotEnoughModels
from arena.sampling import SamplingSettings, choose_pair, pair_probabilities

ACTIVE = SamplingSettings(mode="active")


def test_choose_pair_gives_distinct_models_balanced_sides() -> None:
    rng = random.Random(0)
    pairs = [choose_pair({"x": 1.0, "y": 1.0, "z": 1.0}, rng) for _ in range(3000)]
    assert all(a != b for a, b in pairs)
    firsts = Counter(a for a, _ in pairs)
    assert all(900 < firsts[n] < 1100 for n in "xyz")


def test_choose_pair_weights_shift_how_often_a_model_plays() -> None:
    rng = random.Random(0)
    plays = Counter(n for _ in range(3000) for n in choose_pair({"heavy": 4.0, "y": 1.0, "z": 1.0}, rng))
    assert plays["heavy"] > plays["y"] + 500


def test_choose_pair_same_seed_same_pairs() -> None:
    weights = {"x": 1.0, "y": 2.0, "z": 3.0, "w": 1.0}
    ratings = {"x": 1000.0, "y": 1100.0}
    draws = [
        [choose_pair(weights, rng, settings=ACTIVE, ratings=ratings) for _ in range(20)]
        for rng in (random.Random(5), random.Random(5))
    ]
    assert draws[0] == draws[1]


def test_choose_pair_with_fewer_than_two_available_models_is_a_sentence() -> None:
    with pytest.raises(NotEnoughModels, match="at least two"):
        choose_pair({"only": 1.0, "down": 0.0}, random.Random(0))
    with pytest.raises(NotEnoughModels, match="at least two"):
        pair_probabilities({})


def test_weighted_probabilities_are_the_product_of_weights_and_sum_to_one() -> None:
    probabilities = pair_probabilities({"x": 1.0, "y": 2.0, "z": 3.0})
    assert probabilities == pytest.approx({("x", "y"): 2 / 11, ("x", "z"): 3 / 11, ("y", "z"): 6 / 11})
    assert sum(probabilities.values()) == pytest.approx(1.0)


@pytest.mark.parametrize("mode", ["weighted", "active"])
def test_probabilities_sum_to_one_with_every_option(mode: str) -> None:
    settings = SamplingSettings(mode="active" if mode == "active" else "weighted", target_pairs=(("x", "y", 2.0),))
    probabilities = pair_probabilities(
        {"x": 1.0, "y": 2.0, "z": 3.0, "w": 0.5},
        settings=settings,
        battles={"x": 100, "y": 3},
        pair_battles={frozenset(("x", "y")): 40},
        ratings={"x": 1200.0, "y": 950.0, "z": 1000.0},
    )
    assert len(probabilities) == 6
    assert sum(probabilities.values()) == pytest.approx(1.0)
    assert all(p > 0 for p in probabilities.values())


def test_a_model_with_few_battles_is_boosted_by_the_factor() -> None:
    weights = dict.fromkeys(["new", "x", "y", "z"], 1.0)
    battles = {"new": 29, "x": 30, "y": 500, "z": 31}
    probabilities = pair_probabilities(weights, settings=SamplingSettings(boost=3.0), battles=battles)
    assert probabilities[("new", "x")] / probabilities[("x", "y")] == pytest.approx(3.0)
    plain = pair_probabilities(weights, settings=SamplingSettings(boost=1.0), battles=battles)
    assert plain[("new", "x")] == pytest.approx(plain[("x", "y")])


def test_without_battle_counts_nobody_is_boosted() -> None:
    probabilities = pair_probabilities(dict.fromkeys(["new", "x", "y"], 1.0))
    assert probabilities == pytest.approx(dict.fromkeys([("new", "x"), ("new", "y"), ("x", "y")], 1 / 3))


def test_a_target_pair_is_multiplied() -> None:
    weights = dict.fromkeys(["x", "y", "z"], 1.0)
    settings = SamplingSettings(target_pairs=(("y", "x", 5.0), ("z", "gone", 9.0)))
    probabilities = pair_probabilities(weights, settings=settings)
    assert probabilities[("x", "y")] / probabilities[("x", "z")] == pytest.approx(5.0)
    assert probabilities[("y", "z")] == pytest.approx(probabilities[("x", "z")])


def test_unavailable_models_are_never_drawn() -> None:
    weights = {"x": 1.0, "y": 1.0, "z": 1.0, "down": 0.0}
    settings = SamplingSettings(mode="active", target_pairs=(("down", "x", 100.0), ("absent", "y", 100.0)))
    probabilities = pair_probabilities(weights, settings=settings, battles={"down": 0, "absent": 0})
    assert {m for pair in probabilities for m in pair} == {"x", "y", "z"}
    rng = random.Random(1)
    drawn = {m for _ in range(2000) for m in choose_pair(weights, rng, settings=settings)}
    assert drawn == {"x", "y", "z"}


def test_active_prefers_a_close_little_observed_pair_to_a_lopsided_well_observed_one() -> None:
    weights = dict.fromkeys(["close1", "close2", "far_low", "far_high"], 1.0)
    ratings = {"close1": 1000.0, "close2": 1010.0, "far_low": 700.0, "far_high": 1300.0}
    pair_battles = {frozenset(("close1", "close2")): 2, frozenset(("far_low", "far_high")): 200}
    probabilities = pair_probabilities(weights, settings=ACTIVE, pair_battles=pair_battles, ratings=ratings)
    close, lopsided = probabilities[("close1", "close2")], probabilities[("far_high", "far_low")]
    assert close > 10 * lopsided > 0
    weighted = pair_probabilities(weights, pair_battles=pair_battles, ratings=ratings)
    assert weighted[("close1", "close2")] == pytest.approx(weighted[("far_high", "far_low")])


def test_active_prefers_close_pairs_and_unobserved_pairs_each_on_their_own() -> None:
    weights = dict.fromkeys(["a", "b", "c"], 1.0)
    by_rating = pair_probabilities(weights, settings=ACTIVE, ratings={"a": 1000.0, "b": 1020.0, "c": 1300.0})
    assert by_rating[("a", "b")] > by_rating[("a", "c")]
    by_count = pair_probabilities(weights, settings=ACTIVE, pair_battles={frozenset(("a", "b")): 50})
    assert by_count[("a", "b")] < by_count[("a", "c")] == pytest.approx(by_count[("b", "c")])


def test_active_without_information_is_the_weighted_distribution() -> None:
    weights = {"x": 1.0, "y": 2.0, "z": 3.0}
    assert pair_probabilities(weights, settings=ACTIVE) == pytest.approx(pair_probabilities(weights))


def test_active_starves_no_pair() -> None:
    weights = dict.fromkeys(["top", "mid", "bottom"], 1.0)
    ratings = {"top": 3000.0, "mid": 1000.0, "bottom": -1000.0}
    pair_battles = {frozenset(("top", "bottom")): 100_000, frozenset(("top", "mid")): 100_000}
    strong = SamplingSettings(mode="active", active_strength=20.0)
    probabilities = pair_probabilities(weights, settings=strong, pair_battles=pair_battles, ratings=ratings)
    assert min(probabilities.values()) > 1e-9


def test_draws_follow_pair_probabilities() -> None:
    weights = {"x": 1.0, "y": 2.0, "z": 0.5, "w": 1.5}
    settings = SamplingSettings(mode="active", target_pairs=(("x", "z", 3.0),))
    battles = {"x": 10, "y": 100, "z": 100, "w": 5}
    pair_battles = {frozenset(("x", "y")): 30, frozenset(("z", "w")): 3}
    ratings = {"x": 1000.0, "y": 1150.0, "z": 980.0, "w": 900.0}
    expected = pair_probabilities(
        weights, settings=settings, battles=battles, pair_battles=pair_battles, ratings=ratings
    )
    rng = random.Random(7)
    n = 20_000
    drawn = Counter(
        tuple(
            sorted(
                choose_pair(
                    weights, rng, settings=settings, battles=battles, pair_battles=pair_battles, ratings=ratings
                )
            )
        )
        for _ in range(n)
    )
    assert set(drawn) == set(expected)
    # Three standard errors at most; the seed is fixed, so this is not flaky.
    assert all(abs(drawn[pair] / n - p) < 0.01 for pair, p in expected.items())


def test_settings_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="mode"):
        SamplingSettings(mode="greedy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="multiplier"):
        SamplingSettings(target_pairs=(("x", "y", 0.0),))
    with pytest.raises(ValueError, match="boost"):
        SamplingSettings(boost=-1.0)
