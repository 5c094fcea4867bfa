"""Bradley–Terry ratings from pair counts."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from arena.domain import Outcome
from arena.ratings import fit_bradley_terry, pair_counts, win_probability

LOG10_POINTS = 400 / math.log(10)  # rating points per nat at scale 400, base 10


def simulated_votes(
    true: dict[str, float], n_votes: int, seed: int, tie_rate: float = 0.1
) -> list[tuple[str, str, str]]:
    """Votes between uniformly drawn pairs, outcomes drawn from the true ratings."""
    rng = np.random.default_rng(seed)
    names = sorted(true)
    votes = []
    for _ in range(n_votes):
        i, j = rng.choice(len(names), size=2, replace=False)
        a, b = names[i], names[j]
        if rng.random() < tie_rate:
            votes.append((a, b, "tie" if rng.random() < 0.5 else "both_bad"))
        else:
            votes.append((a, b, "a" if rng.random() < win_probability(true[a], true[b]) else "b"))
    return votes


def reference_fit(votes: list[tuple[str, str, str]]) -> dict[str, float]:
    """Plain logistic-regression MLE by gradient ascent, one row per vote, a tie as two half-weight rows."""
    names = sorted({m for a, b, _ in votes for m in (a, b)})
    index = {n: i for i, n in enumerate(names)}
    rows, weights = [], []
    for a, b, outcome in votes:
        winner_loser = {"a": [(a, b, 1.0)], "b": [(b, a, 1.0)]}.get(outcome, [(a, b, 0.5), (b, a, 0.5)])
        for winner, loser, weight in winner_loser:
            x = np.zeros(len(names))
            x[index[winner]], x[index[loser]] = 1.0, -1.0
            rows.append(x)
            weights.append(weight)
    design, w = np.array(rows), np.array(weights)
    theta = np.zeros(len(names))
    for _ in range(5000):
        p_observed = 1 / (1 + np.exp(design @ theta))  # 1 - P(the row's winner wins)
        gradient = design.T @ (w * p_observed) / w.sum()
        theta += 4.0 * gradient
    assert np.abs(gradient).max() < 1e-9, "the reference fit did not converge"
    ratings = 1000 + LOG10_POINTS * (theta - theta.mean())
    return dict(zip(names, ratings.tolist(), strict=True))


def test_agrees_with_a_plain_fit_on_unaggregated_votes() -> None:
    true = {"a": 1100.0, "b": 1050.0, "c": 1000.0, "d": 960.0, "e": 890.0}
    votes = simulated_votes(true, 1500, seed=1)
    expected = reference_fit(votes)
    got = fit_bradley_terry(pair_counts(votes))
    assert got.keys() == expected.keys()
    assert all(abs(got[m] - expected[m]) < 0.5 for m in expected)


def test_recovers_known_strengths() -> None:
    true = {"a": 1240.0, "b": 1120.0, "c": 1030.0, "d": 970.0, "e": 880.0, "f": 760.0}
    # No ties here: ties drawn regardless of the gap would pull every expected score towards one half.
    got = fit_bradley_terry(pair_counts(simulated_votes(true, 20_000, seed=2, tie_rate=0.0)))
    assert sorted(got, key=got.__getitem__) == sorted(true, key=true.__getitem__)
    assert all(abs(got[m] - true[m]) < 20 for m in true)


def test_scale_base_and_init_follow_the_elo_convention() -> None:
    counts = {("x", "y"): (30, 10, 0)}
    got = fit_bradley_terry(counts, prior=1e-12)
    assert got["x"] - got["y"] == pytest.approx(400 * math.log10(3), abs=1e-6)
    assert (got["x"] + got["y"]) / 2 == pytest.approx(1000)
    other = fit_bradley_terry(counts, scale=100, base=math.e, init=1500, prior=1e-12)
    assert other["x"] - other["y"] == pytest.approx(100 * math.log(3), abs=1e-6)
    assert (other["x"] + other["y"]) / 2 == pytest.approx(1500)


def test_two_models_only_with_the_default_prior() -> None:
    got = fit_bradley_terry({("x", "y"): (30, 10, 0)})
    assert got["x"] - got["y"] == pytest.approx(400 * math.log10(3), abs=1.0)


def test_ties_and_both_bad_count_half_a_win_each() -> None:
    votes = [("x", "y", "a"), ("x", "y", "a"), ("x", "y", "tie"), ("y", "x", Outcome.BOTH_BAD)]
    assert pair_counts(votes) == {("x", "y"): (2, 0, 2)}
    with_ties = fit_bradley_terry(pair_counts(votes), prior=1e-12)
    as_wins = fit_bradley_terry({("x", "y"): (3, 1, 0)}, prior=1e-12)
    assert with_ties == pytest.approx(as_wins)
    only_ties = fit_bradley_terry({("x", "y"): (0, 0, 5)})
    assert only_ties == pytest.approx({"x": 1000.0, "y": 1000.0})


def test_pair_counts_merge_both_side_orders_and_refuse_unknown_outcomes() -> None:
    counts = pair_counts([("y", "x", "a"), ("x", "y", "a"), ("y", "x", "b")])
    assert counts == {("x", "y"): (2, 1, 0)}
    with pytest.raises(ValueError, match="Unknown vote outcome"):
        pair_counts([("x", "y", "model_a")])
    with pytest.raises(ValueError, match="against itself"):
        pair_counts([("x", "x", "a")])


def test_a_model_with_zero_votes_sits_at_the_centre() -> None:
    counts = {("x", "y"): (8, 2, 1), ("y", "z"): (5, 5, 0), ("x", "z"): (6, 3, 2)}
    without = fit_bradley_terry(counts)
    got = fit_bradley_terry(counts, models=["new", "x"])
    assert set(got) == {"new", "x", "y", "z"}
    assert got["new"] == pytest.approx(1000.0, abs=1e-6)
    assert got["x"] - got["y"] == pytest.approx(without["x"] - without["y"], abs=1e-6)


def test_a_model_that_never_lost_is_finite_and_first() -> None:
    counts = {
        ("champ", "x"): (5, 0, 0),
        ("champ", "y"): (5, 0, 1),
        ("x", "y"): (6, 4, 0),
        ("y", "z"): (7, 3, 0),
        ("x", "z"): (8, 2, 0),
    }
    got = fit_bradley_terry(counts)
    assert all(math.isfinite(r) for r in got.values())
    assert max(got, key=got.__getitem__) == "champ"
    assert got["champ"] < 1000 + 2000
    never_won = fit_bradley_terry({("x", "y"): (0, 10, 0)})
    assert math.isfinite(never_won["x"]) and never_won["x"] < never_won["y"]


def test_groups_that_never_met_stay_finite() -> None:
    got = fit_bradley_terry({("a", "b"): (7, 3, 0), ("c", "d"): (2, 8, 0)})
    assert all(math.isfinite(r) for r in got.values())
    assert got["a"] > got["b"] and got["d"] > got["c"]


def test_an_anchor_pins_one_model() -> None:
    counts = {("x", "y"): (30, 10, 0), ("y", "z"): (10, 10, 5)}
    centred = fit_bradley_terry(counts)
    pinned = fit_bradley_terry(counts, anchor=("y", 1200.0))
    assert pinned["y"] == pytest.approx(1200.0)
    assert pinned["x"] - pinned["z"] == pytest.approx(centred["x"] - centred["z"])
    with pytest.raises(ValueError, match="anchor"):
        fit_bradley_terry(counts, anchor=("nobody", 1000.0))


def test_no_votes_no_ratings() -> None:
    assert fit_bradley_terry({}) == {}
    assert fit_bradley_terry({}, models=["x", "y"]) == {"x": 1000.0, "y": 1000.0}


def test_cost_follows_models_not_votes() -> None:
    rng = np.random.default_rng(3)
    names = [f"m{i:02d}" for i in range(20)]
    counts: dict[tuple[str, str], tuple[float, float, float]] = {}
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            wins_a, wins_b, ties = rng.integers(0, 50_000, size=3)
            counts[(a, b)] = (float(wins_a), float(wins_b), float(ties))
    started = time.perf_counter()
    got = fit_bradley_terry(counts)  # ~14 million votes
    assert time.perf_counter() - started < 0.5
    assert len(got) == 20


def test_win_probability() -> None:
    assert win_probability(1000, 1000) == 0.5
    assert win_probability(1400, 1000) == pytest.approx(10 / 11)
    assert win_probability(1100, 1000) + win_probability(1000, 1100) == pytest.approx(1.0)
    assert win_probability(1000 + 1e6, 1000) == 1.0
    assert win_probability(1000, 1000 + 1e6) == pytest.approx(0.0)
    assert win_probability(1010, 1000, scale=10, base=2) == pytest.approx(2 / 3)
