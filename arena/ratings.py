"""Bradley–Terry ratings: pure functions of aggregated pair counts (no storage, no I/O)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TypeAlias, assert_never

import numpy as np
from numpy.typing import NDArray

from arena.domain import Outcome

Strengths: TypeAlias = NDArray[np.float64]
"""Natural-log strengths, one per model (the last axis), in the order of the model list they were fitted for."""

PairCounts: TypeAlias = Mapping[tuple[str, str], tuple[float, float, float]]
"""`(model_a, model_b) -> (wins_a, wins_b, ties)`; ties include "both bad" votes and count half a win to each side."""

DEFAULT_PRIOR = 0.01
"""Precision of the Gaussian prior on natural-log strengths: a standard deviation of 10 nats (~1,737 points)."""

POINTS_PER_NAT = 400.0 / math.log(10.0)
"""Rating points per natural-log unit of strength on the default scale (400 points per factor of ten in odds)."""

_MAX_NEWTON_STEPS = 100
_TOLERANCE = 1e-10


def score_of_a(outcome: Outcome) -> float:
    """How much of a win a vote gives side A: 1, 0, a half for a tie (both bad is a tie for ratings), and three or
    one quarters for a slight preference (half a win and half a tie)."""
    match outcome:
        case Outcome.A:
            return 1.0
        case Outcome.B:
            return 0.0
        case Outcome.TIE | Outcome.BOTH_BAD:
            return 0.5
        case Outcome.A_SLIGHTLY:
            return 0.75
        case Outcome.B_SLIGHTLY:
            return 0.25
        case _:
            assert_never(outcome)


def as_outcome(value: Outcome | str) -> Outcome:
    """An outcome from its stored spelling; anything else is refused, never counted as a tie."""
    try:
        return Outcome(value)
    except ValueError:
        known = ", ".join(repr(o.value) for o in Outcome)
        raise ValueError(f"Unknown vote outcome {value!r}: expected one of {known}.") from None


def shares(outcome: Outcome) -> tuple[float, float, float]:
    """What one vote adds to a (wins_a, wins_b, ties) triple: its score as wins and ties (a slight preference for
    A is half a win and half a tie, 3/4 of a win in all)."""
    score = score_of_a(outcome)
    return (2 * score - 1, 0.0, 2 - 2 * score) if score >= 0.5 else (0.0, 1 - 2 * score, 2 * score)


def pair_counts(votes: Iterable[tuple[str, str, Outcome | str]]) -> dict[tuple[str, str], tuple[float, float, float]]:
    """Aggregate `(model_a, model_b, outcome)` votes into pair counts (both side orders of a pair add up)."""
    out: dict[tuple[str, str], list[float]] = {}
    for model_a, model_b, outcome in votes:
        if model_a == model_b:
            raise ValueError(f"A vote pits {model_a!r} against itself.")
        wins_a, wins_b, ties = shares(as_outcome(outcome))
        # One key per unordered pair, so that (x, y) and (y, x) battles add up.
        flipped = model_b < model_a
        key = (model_b, model_a) if flipped else (model_a, model_b)
        row = out.setdefault(key, [0.0, 0.0, 0.0])
        for k, n in enumerate((wins_b, wins_a, ties) if flipped else (wins_a, wins_b, ties)):
            row[k] += n
    return {pair: (v[0], v[1], v[2]) for pair, v in out.items()}


def outcome_counts(
    rows: Iterable[tuple[str, str, Outcome | str, int]],
) -> dict[tuple[str, str], tuple[float, float, float]]:
    """Aggregated `(model_a, model_b, outcome, count)` rows as PairCounts; a model against itself (self-play)
    says nothing about the difference between two models and is left out."""
    out: dict[tuple[str, str], list[float]] = {}
    for model_a, model_b, outcome, n in rows:
        if model_a == model_b:
            continue
        row = out.setdefault((model_a, model_b), [0.0, 0.0, 0.0])
        for k, share in enumerate(shares(as_outcome(outcome))):
            row[k] += share * n
    return {pair: (v[0], v[1], v[2]) for pair, v in out.items()}


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
    hundred votes by about a hundredth of a point, while a model that won all its 10 votes against one opponent lands
    about 950 points above it rather than at infinity.
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


# --- uncertainty, ranks and matrices (the leaderboard) -----------------------------------------------------------

_BOOTSTRAP_STEPS = 12
_MAX_STEP = 2.0  # nats per Newton step in the bootstrap: damping without a per-round line search


def _cells(counts: PairCounts, models: list[str]) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float64]]:
    """Each unordered pair once, as index arrays i < j and its [wins_i, wins_j, ties] counts."""
    index = {name: k for k, name in enumerate(models)}
    merged: dict[tuple[int, int], list[float]] = {}
    for (a, b), (wins_a, wins_b, ties) in counts.items():
        x, y = index[a], index[b]
        row = merged.setdefault((min(x, y), max(x, y)), [0.0, 0.0, 0.0])
        row[0] += wins_a if x < y else wins_b
        row[1] += wins_b if x < y else wins_a
        row[2] += ties
    keys = list(merged)
    i = np.array([k[0] for k in keys], dtype=np.intp)
    j = np.array([k[1] for k in keys], dtype=np.intp)
    return i, j, np.array([merged[k] for k in keys], dtype=np.float64).reshape(len(keys), 3)


def bootstrap_log_strengths(
    counts: PairCounts,
    models: list[str],
    *,
    rounds: int,
    rng: np.random.Generator,
    prior: float = DEFAULT_PRIOR,
    start: NDArray[np.float64] | None = None,
) -> NDArray[np.float64]:
    """Log-strengths refitted on `rounds` multinomial resamples of the pair counts: an array (rounds, models).

    All rounds are fitted at once: batched Newton steps on (rounds, models, models) arrays, started from the
    full-data fit, so the cost grows with rounds x models², not with the number of votes.
    """
    n = len(models)
    i, j, cells = _cells(counts, models)
    flat = cells.ravel()
    total = int(flat.sum())
    if total == 0 or n == 0:
        return np.zeros((rounds, n))
    draws = rng.multinomial(total, flat / flat.sum(), size=rounds).reshape(rounds, len(i), 3).astype(np.float64)
    wins = np.zeros((rounds, n, n))
    wins[:, i, j] = draws[:, :, 0] + draws[:, :, 2] / 2  # pairs are unique and i < j, so plain assignment
    wins[:, j, i] = draws[:, :, 1] + draws[:, :, 2] / 2
    votes = wins + wins.transpose(0, 2, 1)
    won = wins.sum(axis=2)
    theta = np.tile(start if start is not None else np.zeros(n), (rounds, 1))
    eye = np.eye(n)
    for _ in range(_BOOTSTRAP_STEPS):
        p = 1.0 / (1.0 + np.exp(theta[:, None, :] - theta[:, :, None]))
        gradient = won - (votes * p).sum(axis=2) - prior * theta
        curvature = votes * p * (1.0 - p)
        hessian = eye * (curvature.sum(axis=2) + prior)[:, :, None] - curvature
        step = np.linalg.solve(hessian, gradient[:, :, None])[:, :, 0]
        step = np.clip(step, -_MAX_STEP, _MAX_STEP)
        theta = theta + step
        if float(np.abs(step).max()) < 1e-9:
            break
    return theta


def to_ratings(
    theta: NDArray[np.float64],
    *,
    scale: float = 400.0,
    base: float = 10.0,
    init: float = 1000.0,
    anchor_index: int | None = None,
    anchor_rating: float = 1000.0,
) -> NDArray[np.float64]:
    """Log-strengths (last axis = models) on the rating scale, centred on `init` or pinned at an anchor."""
    ratings: NDArray[np.float64] = init + scale * theta / math.log(base)
    shift: NDArray[np.float64] = (
        init - ratings.mean(axis=-1, keepdims=True)
        if anchor_index is None
        else anchor_rating - ratings[..., anchor_index : anchor_index + 1]
    )
    return ratings + shift


def arena_ranks(lower: NDArray[np.float64], upper: NDArray[np.float64]) -> list[int]:
    """Chatbot Arena's rule: 1 + the number of models whose lower bound is above this model's upper bound."""
    return [1 + int((lower > u).sum()) for u in upper]


def win_rate_matrix(wins: NDArray[np.float64]) -> NDArray[np.float64]:
    """`R[i, j]`: share of i's battles against j that i won (ties half); NaN where they never met."""
    votes = wins + wins.T
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(votes > 0, wins / np.where(votes > 0, votes, 1), np.nan)


def online_elo(
    votes: Iterable[tuple[str, str, Outcome | str]],
    *,
    k: float = 4.0,
    init: float = 1000.0,
    scale: float = 400.0,
    base: float = 10.0,
    every: int = 0,
) -> tuple[dict[str, float], list[tuple[int, dict[str, float]]]]:
    """Elo updated vote by vote in the given order (ties and both-bad count half); with `every` > 0 also a
    snapshot of all ratings after every `every` votes, for a history chart."""
    ratings: dict[str, float] = {}
    history: list[tuple[int, dict[str, float]]] = []
    for count, (model_a, model_b, outcome) in enumerate(votes, start=1):
        ra, rb = ratings.setdefault(model_a, init), ratings.setdefault(model_b, init)
        expected = 1.0 / (1.0 + base ** ((rb - ra) / scale))
        score = score_of_a(as_outcome(outcome))
        ratings[model_a] = ra + k * (score - expected)
        ratings[model_b] = rb - k * (score - expected)
        if every and count % every == 0:
            history.append((count, dict(ratings)))
    return ratings, history
