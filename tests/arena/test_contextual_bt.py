"""Contextual Bradley–Terry: the plain fit without features, planted style effects recovered, sandwich intervals
agreeing with the bootstrap on data the model describes."""

from __future__ import annotations

import numpy as np
import pytest

from arena.contextual_bt import Z95, Matches, fit_contextual
from arena.ratings import bootstrap_log_strengths, fit_log_strengths, win_matrix

MODELS = [f"m{k:02d}" for k in range(10)]


def planted(
    rng: np.random.Generator, votes: int, theta: np.ndarray, *, beta: float = 0.0, ties: float = 0.0
) -> tuple[Matches, dict[tuple[str, str], tuple[float, float, float]]]:
    """Battles between random pairs; with `beta`, side A's answer length difference moves the odds."""
    n = len(theta)
    a = rng.integers(0, n, votes)
    b = (a + rng.integers(1, n, votes)) % n
    # the models with a higher index write longer answers: style and strength are not independent
    length = rng.normal(0.0, 1.0, votes) + 0.15 * (a - b)
    logit = theta[a] - theta[b] + beta * length
    won = rng.random(votes) < 1.0 / (1.0 + np.exp(-logit))
    tied = rng.random(votes) < ties
    score = np.where(tied, 0.5, won.astype(np.float64))
    matches = Matches(a=a, b=b, score=score, weight=np.ones(votes), features=length[:, None])
    counts: dict[tuple[str, str], tuple[float, float, float]] = {}
    for i, j, s in zip(a, b, score, strict=True):
        key = (MODELS[i], MODELS[j])
        w_a, w_b, t = counts.get(key, (0.0, 0.0, 0.0))
        counts[key] = (w_a + (s == 1.0), w_b + (s == 0.0), t + (s == 0.5))
    return matches, counts


def test_without_features_it_is_the_plain_bradley_terry_fit() -> None:
    rng = np.random.default_rng(1)
    _, counts = planted(rng, 4000, np.linspace(-1, 1, len(MODELS)), ties=0.2)
    fit = fit_contextual(Matches.from_pair_counts(counts, MODELS), len(MODELS))
    assert np.allclose(fit.theta, fit_log_strengths(win_matrix(counts, MODELS)), atol=1e-7)
    assert fit.beta.shape == (0,)


def test_sandwich_intervals_agree_with_the_bootstrap_on_well_specified_data() -> None:
    rng = np.random.default_rng(7)
    theta = np.linspace(-1.2, 1.2, len(MODELS))
    _, counts = planted(rng, 30_000, theta)
    fit = fit_contextual(Matches.from_pair_counts(counts, MODELS), len(MODELS))
    boot = bootstrap_log_strengths(counts, MODELS, rounds=2000, rng=np.random.default_rng(3), start=fit.theta)
    boot -= boot.mean(axis=1, keepdims=True)  # centred, as the sandwich reports them
    boot_width = np.percentile(boot, 97.5, axis=0) - np.percentile(boot, 2.5, axis=0)
    sandwich_width = 2 * Z95 * fit.strength_sd()
    ratio = sandwich_width / boot_width
    assert abs(float(np.median(ratio)) - 1.0) < 0.03, ratio
    assert np.all(np.abs(ratio - 1.0) < 0.10), ratio


def test_with_ties_the_sandwich_follows_the_bootstrap_where_the_model_based_interval_does_not() -> None:
    """Ties are not Bradley–Terry outcomes (a tie scores ½, with less spread than a win or a loss): the robust
    covariance sees it as the bootstrap does; J⁻¹ alone would be about a third too wide here."""
    rng = np.random.default_rng(11)
    _, counts = planted(rng, 20_000, np.linspace(-1, 1, len(MODELS)), ties=0.4)
    fit = fit_contextual(Matches.from_pair_counts(counts, MODELS), len(MODELS))
    boot = bootstrap_log_strengths(counts, MODELS, rounds=1500, rng=np.random.default_rng(5), start=fit.theta)
    boot -= boot.mean(axis=1, keepdims=True)
    boot_width = np.percentile(boot, 97.5, axis=0) - np.percentile(boot, 2.5, axis=0)
    robust = float(np.median(2 * Z95 * fit.strength_sd() / boot_width))
    model_based = float(np.median(2 * Z95 * fit.strength_sd(robust=False) / boot_width))
    assert abs(robust - 1.0) < 0.05, robust
    assert model_based > 1.2, model_based


def test_a_planted_length_bias_is_recovered_and_removed_from_the_ratings() -> None:
    rng = np.random.default_rng(21)
    theta = np.zeros(len(MODELS))  # every model equally good: only the length of its answers differs
    beta = 0.4
    matches, counts = planted(rng, 60_000, theta, beta=beta)
    fit = fit_contextual(matches, len(MODELS))
    sd = fit.beta_sd()[0]
    assert abs(fit.beta[0] - beta) < Z95 * sd, (fit.beta, sd)
    centred = fit.theta - fit.theta.mean()
    assert np.all(np.abs(centred) < Z95 * fit.strength_sd() + 1e-9), centred
    plain = fit_log_strengths(win_matrix(counts, MODELS))
    plain -= plain.mean()
    # without style control the long-winded models look better: the last model is rated far above the first
    assert plain[-1] - plain[0] > 10 * (fit.strength_sd()[-1] + fit.strength_sd()[0])


def test_an_anchor_moves_the_uncertainty_onto_the_others() -> None:
    rng = np.random.default_rng(2)
    _, counts = planted(rng, 5000, np.linspace(-1, 1, len(MODELS)))
    fit = fit_contextual(Matches.from_pair_counts(counts, MODELS), len(MODELS))
    anchored = fit.strength_sd(anchor_index=0)
    assert anchored[0] == pytest.approx(0.0, abs=1e-9)
    assert np.all(anchored[1:] > fit.strength_sd()[1:])


def test_a_non_positive_prior_is_refused() -> None:
    with pytest.raises(ValueError, match="prior"):
        fit_contextual(Matches.from_pair_counts({}, MODELS), len(MODELS), prior=0.0)
