"""The style-controlled leaderboard: ratings with answer length and markdown held equal, and what each is worth.

Chatbot Arena's definition: per vote and feature, the normalised difference (a - b) / (a + b + 1) of the two
sides' counts up to the judged round (`arena.style`), standardised over the votes; a contextual Bradley–Terry fit
(`arena.contextual_bt`) gives each model's strength with style held equal, and each feature's coefficient, all
with sandwich intervals. The coefficients are also said in points: what a typical difference is worth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from arena.contextual_bt import Z95, Matches, fit_contextual, floor_thin_records, reported_sd, thin_records
from arena.domain import Outcome
from arena.ratings import POINTS_PER_NAT, arena_ranks, score_of_a, to_ratings
from arena.style import STYLE_FEATURES, StyleVotes, style_differences

FEATURE_WORDS = {"length": "length", "headers": "markdown headers", "lists": "list items", "bold": "bold spans"}


@dataclass(frozen=True)
class StyleEffect:
    """What one style feature is worth, with its 95% interval, in rating points for a stated difference."""

    feature: str
    points: float
    lower: float
    upper: float
    sentence: str


@dataclass(frozen=True)
class StyleStanding:
    """One model's style-controlled line."""

    model: str
    votes: int
    rank: int
    rating: float
    lower: float
    upper: float


@dataclass(frozen=True)
class StyleBoard:
    """Style-controlled standings (best first) and the style effects; empty without votes that carry style."""

    standings: list[StyleStanding]
    effects: list[StyleEffect]
    votes: int


def _points(value: float) -> str:
    return "point" if round(abs(value)) == 1 else "points"


def _standardise(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, std = values.mean(axis=0), values.std(axis=0)
    return (values - mean) / np.where(std > 1e-9, std, 1.0), std


def _examples(counts_a: np.ndarray, counts_b: np.ndarray) -> list[tuple[float, str]]:
    """Per feature, a typical difference as a normalised difference, and how it is said."""
    tokens = np.concatenate([counts_a[:, 0], counts_b[:, 0]])
    median_tokens = float(np.partition(tokens, (len(tokens) - 1) // 2)[(len(tokens) - 1) // 2])  # the lower median
    length = 100.0 / (2 * median_tokens + 100.0 + 1.0)
    return [
        (length, f"an answer 100 tokens longer than its rival's {median_tokens:.0f} (the median length)"),
        (0.5, "one markdown header against none"),
        (0.5, "one list item against none"),
        (0.5, "one bold span against none"),
    ]


def build_style_board(votes: StyleVotes) -> StyleBoard:
    """Fit ratings with style held equal; self-play votes are left out, as from every rating."""
    kept = np.fromiter((a != b for a, b in zip(votes.model_a, votes.model_b, strict=True)), bool, len(votes))
    if not kept.any():
        return StyleBoard(standings=[], effects=[], votes=0)
    pairs = zip(votes.model_a, votes.model_b, strict=True)
    models = sorted({m for a, b in pairs if a != b for m in (a, b)})
    index = {m: k for k, m in enumerate(models)}
    scores = {o.value: score_of_a(o) for o in Outcome}
    n = len(votes)
    a = np.fromiter((index.get(m, -1) for m in votes.model_a), np.intp, n)[kept]
    b = np.fromiter((index.get(m, -1) for m in votes.model_b), np.intp, n)[kept]
    score = np.fromiter((scores[o] for o in votes.outcome), np.float64, n)[kept]
    counts_a, counts_b = votes.counts_a[kept], votes.counts_b[kept]
    features, std = _standardise(style_differences(counts_a, counts_b))
    fit = fit_contextual(Matches(a, b, score, np.ones(len(a)), features), len(models))
    point = to_ratings(fit.theta)
    half = Z95 * reported_sd(fit.covariance, len(models)) * POINTS_PER_NAT
    votes_per_model = np.bincount(a, minlength=len(models)) + np.bincount(b, minlength=len(models))
    floor = Z95 * reported_sd(fit.model_covariance, len(models)) * POINTS_PER_NAT
    as_b = np.bincount(b, weights=1 - score, minlength=len(models))
    won = np.bincount(a, weights=score, minlength=len(models)) + as_b
    thin = thin_records(votes_per_model.astype(np.float64), np.asarray(won, dtype=np.float64))
    lower, upper = floor_thin_records(point, point - half, point + half, thin, floor)
    ranks = arena_ranks(lower, upper)
    standings = sorted(
        (
            StyleStanding(
                models[k], round(float(votes_per_model[k])), ranks[k], float(point[k]), float(lower[k]), float(upper[k])
            )
            for k in range(len(models))
        ),
        key=lambda s: (s.rank, -s.rating),
    )
    beta_sd = fit.beta_sd()
    effects = []
    for k, (feature, (delta, said)) in enumerate(zip(STYLE_FEATURES, _examples(counts_a, counts_b), strict=True)):
        if std[k] <= 1e-9:  # every vote had the same difference (e.g. no answer used a header): nothing to measure
            sentence = f"No two answers differed in {FEATURE_WORDS[feature]}: its effect is not measured."
            effects.append(StyleEffect(feature, 0.0, 0.0, 0.0, sentence))
            continue
        per_unit = POINTS_PER_NAT * delta / std[k]
        points, spread = float(fit.beta[k] * per_unit), float(Z95 * beta_sd[k] * per_unit)
        effects.append(
            StyleEffect(
                feature,
                points,
                points - spread,
                points + spread,
                f"{said[0].upper()}{said[1:]} is worth {points:+.0f} {_points(points)} "
                f"(95% interval {points - spread:+.0f} to {points + spread:+.0f}).",
            )
        )
    return StyleBoard(standings=standings, effects=effects, votes=len(a))


def style_ratings(votes: StyleVotes) -> dict[str, float]:
    """Each model's style-controlled rating (what active sampling weighs pairs by with `sampling.ratings: style`)."""
    return {s.model: s.rating for s in build_style_board(votes).standings}
