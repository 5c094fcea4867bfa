"""Bradley–Terry ratings: pure functions of aggregated pair counts (no storage, no I/O)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TypeAlias

import numpy as np
from numpy.typing import NDArray

PairCounts: TypeAlias = Mapping[tuple[str, str], tuple[float, float, float]]
"""`(model_a, model_b) -> (wins_a, wins_b, ties)`; ties include "both bad" votes and count half a win to each side."""

DEFAULT_PRIOR = 0.01
"""Precision of the Gaussian prior on natural-log strengths: a standard deviation of 10 nats (~1,737 points)."""

_MAX_NEWTON_STEPS = 100
_TOLERANCE = 1e-10


def pair_counts(votes: Iterable[tuple[str, str, str]]) -> dict[tuple[str, str], tuple[int, int, int]]:
    """Aggregate `(model_a, model_b, outcome)` votes, outcome "a" | "b" | "tie" | "both_bad", into pair counts."""
    out: dict[tuple[str, str], tuple[int, int, int]] = {}
    for model_a, model_b, outcome in votes:
        if model_a == model_b:
            raise ValueError(f"A vote pits {model_a!r} against itself.")
        if outcome not in ("a", "b", "tie", "both_bad"):
            raise ValueError(f"Unknown vote outcome {outcome!r}: expected 'a', 'b', 'tie' or 'both_bad'.")
        # One key per unordered pair, so that (x, y) and (y, x) battles add up.
        flipped = model_b < model_a
        key = (model_b, model_a) if flipped else (model_a, model_b)
        first, second, ties = out.get(key, (0, 0, 0))
        if outcome in ("tie", "both_bad"):
            ties += 1
        elif (outcome == "a") != flipped:
            first += 1
        else:
            second += 1
        out[key] = (first, second, ties)
    return out


def win_probability(rating_a: float, rating_b: float, scale: float = 400.0, base: float = 10.0) -> float:
    """The chance that the model rated `rating_a` beats the one rated `rating_b` (a tie counted as half)."""
    # The expit form with a clamped exponent never overflows, whatever the gap.
    exponent = max(-700.0, min(700.0, (rating_b - rating_a) / scale * math.log(base)))
    return 1.0 / (1.0 + math.exp(exponent))


def win_matrix(counts: PairCounts, models: list[str]) -> NDArray[np.float64]:
    """`W[i, j]`: wins of models[i] over models[j] plus half their ties; `W + W.T` is the votes per pair."""
    index = {name: i for i, name in enumerate(models)}
    wins = np.zeros((len(models), len(models)))
    for (model_a, model_b), (wins_a, wins_b, ties) in counts.items():
        if model_a == model_b:
            raise ValueError(f"Pair counts pit {model_a!r} against itself.")
        if min(wins_a, wins_b, ties) < 0:
            raise ValueError(f"Pair counts for {model_a!r} and {model_b!r} are negative.")
        i, j = index[model_a], index[model_b]
        wins[i, j] += wins_a + ties / 2
        wins[j, i] += wins_b + ties / 2
    return wins


def fit_log_strengths(wins: NDArray[np.float64], *, prior: float = DEFAULT_PRIOR) -> NDArray[np.float64]:
    """Penalised maximum-likelihood natural-log strengths from a `win_matrix`, by damped Newton steps."""
    if prior <= 0:
        raise ValueError("The prior must be positive, or a model that never lost has no finite rating.")
    n_models = wins.shape[0]
    votes = wins + wins.T
    won = wins.sum(axis=1)
    theta = np.zeros(n_models)

    def objective(t: NDArray[np.float64]) -> float:
        diff = t[:, None] - t[None, :]
        return float(-(wins * np.logaddexp(0.0, -diff)).sum() - prior / 2 * (t @ t))

    current = objective(theta)
    for _ in range(_MAX_NEWTON_STEPS):
        p = 1.0 / (1.0 + np.exp(theta[None, :] - theta[:, None]))
        gradient = won - (votes * p).sum(axis=1) - prior * theta
        curvature = votes * p * (1.0 - p)
        # The prior makes the negative Hessian positive definite, so the step always exists and goes uphill.
        hessian = np.diag(curvature.sum(axis=1) + prior) - curvature
        step = np.linalg.solve(hessian, gradient)
        # Halve the step until the objective rises: a full step can overshoot for a model that never lost.
        size = 1.0
        while size > 1e-6:
            proposal = theta + size * step
            value = objective(proposal)
            if value >= current:
                break
            size /= 2
        else:
            break
        theta, current = proposal, value
        if float(np.abs(size * step).max(initial=0.0)) < _TOLERANCE:
            break
    return theta


def fit_bradley_terry(
    counts: PairCounts,
    *,
    models: Iterable[str] | None = None,
    scale: float = 400.0,
    base: float = 10.0,
    init: float = 1000.0,
    anchor: tuple[str, float] | None = None,
    prior: float = DEFAULT_PRIOR,
) -> dict[str, float]:
    """Bradley–Terry ratings on the Elo-like scale `init + scale * log_base(strength)`, by model name.

    Ties count half a win to each side. Rated: every model in `counts`, plus any in `models` (a model with no votes
    sits at the centre). The ratings average `init`, unless `anchor=(model, rating)` pins one model instead.

    Regularisation: a Gaussian prior N(0, 1/prior) on each natural-log strength, i.e. an L2 penalty
    `prior / 2 * sum(theta**2)` on the log-likelihood. It is symmetric (it pulls every model towards the centre
    alike) and it keeps a model that never lost, or one in a group that never met the others, finite. With the
    default 0.01 (a prior standard deviation of 10 nats, about 1,737 points at scale 400) it moves a model with a
    hundred votes by well under one rating point, while a model with 10 wins and no loss lands about 900 points up
    rather than at infinity.
    """
    names = sorted({name for pair in counts for name in pair} | set(models or ()))
    if anchor is not None and anchor[0] not in names:
        raise ValueError(f"The anchor model {anchor[0]!r} has no votes and is not among the models to rate.")
    if not names:
        return {}
    theta = fit_log_strengths(win_matrix(counts, names), prior=prior)
    ratings = init + scale * theta / math.log(base)
    if anchor is None:
        ratings += init - ratings.mean()
    else:
        ratings += anchor[1] - ratings[names.index(anchor[0])]
    return {name: float(r) for name, r in zip(names, ratings, strict=True)}
