"""Bradley–Terry with context: model strengths and per-battle feature effects fitted together, with sandwich
(robust) covariances.

A row is a match between models `a` and `b` with A's share of the win `score` (1, 0, ½ for a tie, ¾ for a slight
preference), a weight (how many identical matches it stands for) and features (e.g. standardised style
differences, `arena.style`). The model: logit P(A wins) = theta[a] - theta[b] + features · beta, fitted by
penalised maximum likelihood with damped Newton steps. Every sum over rows is a few `bincount`s and one small
matrix product, so a million rows fit in a fraction of a second, and with no features it is the plain
Bradley–Terry fit of `arena.ratings`.

Intervals: the sandwich covariance J⁻¹ M J⁻¹ (J: the penalised information; M: the sum of each vote's score
outer product) stays right when the outcome model is not exactly true (a tie scores ½, which Bradley–Terry does
not produce), as long as votes are independent (it is not clustered by voter); on data the model describes it
agrees with the bootstrap (`tests/arena/test_contextual_bt.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from arena.ratings import DEFAULT_PRIOR, PairCounts

Z95 = 1.959963984540054  # the two-sided 95% normal quantile

_MAX_STEPS = 50
_TOLERANCE = 1e-8  # nats: under a hundred-thousandth of a rating point


@dataclass(frozen=True)
class Matches:
    """Rows of matches: model indices, A's share of the win, weights and features (rows, k)."""

    a: NDArray[np.intp]
    b: NDArray[np.intp]
    score: NDArray[np.float64]
    weight: NDArray[np.float64]
    features: NDArray[np.float64]

    @classmethod
    def from_pair_counts(cls, counts: PairCounts, models: list[str]) -> Matches:
        """Three weighted rows per pair (A won, B won, tie) from aggregated counts, without features."""
        index = {name: k for k, name in enumerate(models)}
        a, b, score, weight = [], [], [], []
        for (model_a, model_b), (wins_a, wins_b, ties) in counts.items():
            for share, n in ((1.0, wins_a), (0.0, wins_b), (0.5, ties)):
                if n > 0:
                    a.append(index[model_a])
                    b.append(index[model_b])
                    score.append(share)
                    weight.append(float(n))
        return cls(
            a=np.array(a, dtype=np.intp),
            b=np.array(b, dtype=np.intp),
            score=np.array(score, dtype=np.float64),
            weight=np.array(weight, dtype=np.float64),
            features=np.zeros((len(a), 0)),
        )


@dataclass(frozen=True)
class ContextualFit:
    """The fitted log-strengths and feature coefficients, with their sandwich covariance (models first)."""

    theta: NDArray[np.float64]
    beta: NDArray[np.float64]
    covariance: NDArray[np.float64]
    model_covariance: NDArray[np.float64]  # J⁻¹ alone: right only where the model is exactly true (for comparison)

    def strength_sd(self, anchor_index: int | None = None, *, robust: bool = True) -> NDArray[np.float64]:
        """Standard errors of the log-strengths as reported: centred on their mean, or relative to an anchor."""
        return reported_sd(self.covariance if robust else self.model_covariance, len(self.theta), anchor_index)

    def beta_sd(self) -> NDArray[np.float64]:
        """Standard errors of the feature coefficients."""
        n = len(self.theta)
        return np.sqrt(np.clip(np.diag(self.covariance)[n:], 0.0, None))


def _per_model(index: NDArray[np.intp], values: NDArray[np.float64], n: int) -> NDArray[np.float64]:
    return np.bincount(index, weights=values, minlength=n).astype(np.float64, copy=False)


def _outer_sum(m: Matches, n: int, c: NDArray[np.float64]) -> NDArray[np.float64]:
    """Σ c · x xᵀ over rows, x = (e_a - e_b, features): the information (c = p(1-p)) or the meat (c = residual²)."""
    k = m.features.shape[1]
    pair = np.bincount(m.a * n + m.b, weights=c, minlength=n * n).reshape(n, n)
    pair = pair + pair.T
    out = np.zeros((n + k, n + k))
    out[:n, :n] = np.diag(pair.sum(axis=1)) - pair
    if k:
        weighted = m.features * c[:, None]
        cross = np.stack([_per_model(m.a, weighted[:, f], n) - _per_model(m.b, weighted[:, f], n) for f in range(k)])
        out[:n, n:] = cross.T
        out[n:, :n] = cross
        out[n:, n:] = m.features.T @ weighted
    return out


def _linear(m: Matches, params: NDArray[np.float64], n: int) -> NDArray[np.float64]:
    """Each row's logit of A winning."""
    return params[:n][m.a] - params[:n][m.b] + m.features @ params[n:]


def _objective(m: Matches, eta: NDArray[np.float64], params: NDArray[np.float64], prior: float) -> float:
    # -[y log p + (1 - y) log(1 - p)] = log(1 + e^eta) - y * eta, one logaddexp per row
    loss = float(m.weight @ (np.logaddexp(0.0, eta) - m.score * eta))
    return -loss - prior / 2 * float(params @ params)


def fit_contextual(m: Matches, n_models: int, *, prior: float = DEFAULT_PRIOR) -> ContextualFit:
    """Penalised maximum likelihood (a Gaussian prior of precision `prior` on every parameter) and the sandwich
    covariance at the optimum."""
    if prior <= 0:
        raise ValueError("The prior must be positive, or a model that never lost has no finite rating.")
    n, k = n_models, m.features.shape[1]
    params = np.zeros(n + k)
    eta = np.zeros(len(m.a))
    current = _objective(m, eta, params, prior)
    eye = np.eye(n + k)
    for _ in range(_MAX_STEPS):
        p = 1.0 / (1.0 + np.exp(-eta))
        residual = m.weight * (m.score - p)
        gradient = np.concatenate(
            [_per_model(m.a, residual, n) - _per_model(m.b, residual, n), m.features.T @ residual]
        )
        gradient -= prior * params
        information = _outer_sum(m, n, m.weight * p * (1.0 - p)) + prior * eye
        step = np.linalg.solve(information, gradient)
        move = _linear(m, step, n)  # the logits move linearly with the parameters: one pass per step
        size = 1.0
        while size > 1e-6:  # halve the step until the objective rises (a model that never lost overshoots)
            proposal, moved = params + size * step, eta + size * move
            value = _objective(m, moved, proposal, prior)
            if value >= current:
                break
            size /= 2
        else:
            break
        params, eta, current = proposal, moved, value
        if float(np.abs(size * step).max(initial=0.0)) < _TOLERANCE:
            break  # converged: `p` and `information` of this step's start stand for the optimum
    else:
        p = 1.0 / (1.0 + np.exp(-eta))
        information = _outer_sum(m, n, m.weight * p * (1.0 - p)) + prior * eye
    robust, model_based = _sandwich(m, n, p, information)
    return ContextualFit(theta=params[:n], beta=params[n:], covariance=robust, model_covariance=model_based)


def _sandwich(
    m: Matches, n: int, p: NDArray[np.float64], information: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    meat = _outer_sum(m, n, m.weight * (m.score - p) ** 2)
    bread = np.asarray(np.linalg.inv(information), dtype=np.float64)
    return bread @ meat @ bread, bread


def sandwich_covariance(
    m: Matches, params: NDArray[np.float64], n_models: int, *, prior: float = DEFAULT_PRIOR
) -> NDArray[np.float64]:
    """The sandwich covariance of all parameters at `params` (log-strengths first, then feature coefficients),
    for a fit made elsewhere (e.g. `arena.ratings.fit_log_strengths` on the same matches)."""
    p = 1.0 / (1.0 + np.exp(-_linear(m, params, n_models)))
    information = _outer_sum(m, n_models, m.weight * p * (1.0 - p)) + prior * np.eye(len(params))
    return _sandwich(m, n_models, p, information)[0]


def model_covariance(
    m: Matches, params: NDArray[np.float64], n_models: int, *, prior: float = DEFAULT_PRIOR
) -> NDArray[np.float64]:
    """The model-based covariance (the inverse information, with the prior) of all parameters at `params`: what
    the votes could tell if the model were right, however few they are."""
    p = 1.0 / (1.0 + np.exp(-_linear(m, params, n_models)))
    information = _outer_sum(m, n_models, m.weight * p * (1.0 - p)) + prior * np.eye(len(params))
    return np.asarray(np.linalg.inv(information), dtype=np.float64)


FEW_VOTES = 30
"""Below this many votes a model's interval is at least its model-based one (see `floor_thin_records`)."""


def thin_records(votes: NDArray[np.float64], won: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Which models' records resampling cannot describe: fewer than FEW_VOTES votes, or a score share of exactly
    0 or 1 (never won, or never lost: every resample is the same record, and no residual is left)."""
    return (votes < FEW_VOTES) | (won <= 0) | (won >= votes)


def floor_thin_records(
    point: NDArray[np.float64],
    lower: NDArray[np.float64],
    upper: NDArray[np.float64],
    thin: NDArray[np.bool_],
    half_width: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Intervals widened to at least point ± `half_width` (the model-based one) where `thin`. Resampling a
    handful of votes, or their residuals, cannot show how uncertain they leave a rating: one vote resampled is
    always the same vote, and a model that won every vote has no residual left, so bootstrap and sandwich
    intervals collapse to a point exactly where they should be widest."""
    return (
        np.where(thin, np.minimum(lower, point - half_width), lower),
        np.where(thin, np.maximum(upper, point + half_width), upper),
    )


def reported_sd(covariance: NDArray[np.float64], n_models: int, anchor_index: int | None = None) -> NDArray[np.float64]:
    """Standard errors of log-strengths as the leaderboard reports them: centred on their mean (the ratings
    average a fixed value), or relative to an anchor model (whose own is then 0)."""
    n = n_models
    if anchor_index is None:
        shift = np.eye(n) - np.full((n, n), 1.0 / n)
    else:
        shift = np.eye(n) - np.outer(np.ones(n), np.eye(n)[anchor_index])
    cov = shift @ covariance[:n, :n] @ shift.T
    sd: NDArray[np.float64] = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    return sd
