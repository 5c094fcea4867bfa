"""An audit of the votes behind a leaderboard: does the evidence support the ranking it shows?

Pure functions of aggregated votes `(voter, model_a, model_b, outcome, count)`, side A as shown to the voter.
Each check states its bar; a finding is one plain sentence with its number and interval, made only when the
evidence clears the bar, so a clean board gives none. The checks:

- position bias: a Bradley–Terry fit with one more parameter, side A's advantage, with its sandwich interval;
- ties and *both bad*: a model whose share of such votes stands out from the others' (Holm-corrected tests);
- voter concentration: the share of votes cast by the top 1% and 10% of voters, and the board without them;
- cycles: three models that beat each other in a circle, each win significant (Bonferroni over the pairs);
- rank stability: how often each model keeps its place when the votes are resampled (bootstrap);
- separation: neighbours whose intervals overlap, with the extra votes between them that would separate them.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations, pairwise, permutations

import numpy as np

from arena.contextual_bt import Z95, Matches, fit_contextual, reported_sd
from arena.domain import Outcome
from arena.ratings import POINTS_PER_NAT, arena_ranks, bootstrap_log_strengths, outcome_counts, score_of_a

VoterOutcomes = Sequence[tuple[str, str, str, Outcome, int]]
"""(voter id, model on side A, model on side B, outcome, votes), as `Repository.voter_outcomes` reads them."""

MIN_VOTES = 200  # below this the side parameter's interval is not trusted (near-unanimous votes shrink it)
MIN_PAIR_VOTES = 20  # a pair with fewer votes takes no part in a cycle

BARS: dict[str, str] = {
    "position": f"side A's share of the score between equal models, from {MIN_VOTES} votes on, shown when its 95% "
    "interval excludes 50% and it is 1 point or more away from it",
    "ties": "a model whose tie-or-both-bad share differs from the median model's by 5 points or more, "
    "significant at 5% after Holm's correction over the models",
    "voters": "with 100 voters or more, the top 1% casting 10% of the votes or more; with 10 or more, the top 10% "
    "whose removal changes a rank (by the 95% intervals)",
    "cycles": f"three models beating each other in a circle, each pair with {MIN_PAIR_VOTES} votes or more and "
    "its win significant at 5% (two-sided) after Bonferroni's correction over the pairs",
    "stability": "a model keeping its place in fewer than half of the bootstrap resamples",
    "separation": "neighbours in the ranking whose 95% interval of the difference includes 0",
}
"""Each check's bar, as the audit states it."""


def counted(n: int, noun: str) -> str:
    """`n` and its noun, plural unless one: "1 voter", "3,000 votes"."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


QUIET = "No check clears its bar: the votes show none of the problems looked for."
"""What the audit says when no finding fires."""


@dataclass(frozen=True)
class Finding:
    """One check's evidence, as a sentence."""

    check: str  # a key of BARS
    sentence: str


@dataclass(frozen=True)
class Audit:
    """The findings (empty when no check clears its bar) and what the checks looked at."""

    findings: list[Finding]
    votes: int
    voters: int
    models: list[str]  # the rated models, best first
    stability: dict[str, float]  # share of resamples in which each model keeps its place


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def position_bias(rows: VoterOutcomes, models: list[str]) -> Finding | None:
    """Side A's advantage, fitted with the models' strengths; a finding when its interval excludes none."""
    counts = outcome_counts((a, b, o, n) for _, a, b, o, n in rows)
    plain = Matches.from_pair_counts(counts, models)
    if plain.weight.sum() < MIN_VOTES:
        return None
    with_side = Matches(plain.a, plain.b, plain.score, plain.weight, np.ones((len(plain.a), 1)))
    fit = fit_contextual(with_side, len(models))
    gamma, sd = float(fit.beta[0]), float(fit.beta_sd()[0])
    low, high = _sigmoid(gamma - Z95 * sd), _sigmoid(gamma + Z95 * sd)
    if low <= 0.5 <= high or abs(_sigmoid(gamma) - 0.5) < 0.01:
        return None
    side = "A (left)" if gamma > 0 else "B (right)"
    return Finding(
        "position",
        f"Between equally good models, side A gets {100 * _sigmoid(gamma):.1f}% of the score (95% interval "
        f"{100 * low:.1f}–{100 * high:.1f}%): voters favour side {side}.",
    )


def _holm(p_values: list[float]) -> list[float]:
    """Holm-adjusted p-values, in the input order."""
    order = sorted(range(len(p_values)), key=lambda k: p_values[k])
    adjusted, running = [0.0] * len(p_values), 0.0
    for rank, k in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[k]))
        adjusted[k] = running
    return adjusted


def undecided_rates(rows: VoterOutcomes, models: list[str]) -> list[Finding]:
    """Models whose share of ties and *both bad* votes stands out from the typical (median) model's share.

    The median, not the other models' pooled battles: those include the outlier's own battles, which would make
    every other model look unusual too.
    """
    undecided = {Outcome.TIE, Outcome.BOTH_BAD}
    per_votes: Counter[str] = Counter()
    per_none: Counter[str] = Counter()
    for _, a, b, outcome, n in rows:
        for model in {a, b}:
            per_votes[model] += n
            per_none[model] += n if outcome in undecided else 0
    rated = [m for m in models if per_votes[m] > 0]
    if len(rated) < 3:
        return []
    rate = {m: per_none[m] / per_votes[m] for m in rated}
    typical = float(np.median(list(rate.values())))
    spread = math.sqrt(max(typical * (1 - typical), 1e-12))
    p_values = [2 * _normal_sf(abs(rate[m] - typical) / (spread / math.sqrt(per_votes[m]))) for m in rated]
    findings = []
    for model, adjusted in zip(rated, _holm(p_values), strict=True):
        r = rate[model]
        if adjusted < 0.05 and abs(r - typical) >= 0.05:
            half = Z95 * math.sqrt(r * (1 - r) / per_votes[model])
            findings.append(
                Finding(
                    "ties",
                    f"{model}: {100 * r:.0f}% of its votes are ties or both bad (95% interval "
                    f"{100 * max(0.0, r - half):.0f}–{100 * min(1.0, r + half):.0f}%), against {100 * typical:.0f}% "
                    "for the typical model.",
                )
            )
    return findings


def _board(rows: VoterOutcomes, models: list[str]) -> np.ndarray:
    counts = outcome_counts((a, b, o, n) for _, a, b, o, n in rows)
    return fit_contextual(Matches.from_pair_counts(counts, models), len(models)).theta


def _order(theta: np.ndarray, models: list[str]) -> list[str]:
    return [models[k] for k in np.argsort(-theta, kind="stable")]


def _ranks(rows: VoterOutcomes, models: list[str]) -> dict[str, int]:
    """Each model's rank by the 95% sandwich intervals (1 + the models better beyond doubt)."""
    counts = outcome_counts((a, b, o, n) for _, a, b, o, n in rows)
    fit = fit_contextual(Matches.from_pair_counts(counts, models), len(models))
    half = Z95 * reported_sd(fit.covariance, len(models))
    lower, upper = fit.theta - half, fit.theta + half
    return dict(zip(models, arena_ranks(lower, upper), strict=True))


def voter_concentration(rows: VoterOutcomes, models: list[str]) -> Finding | None:
    """A few voters casting much of the vote, and what the ranking is without them (rows of pruned votes, whose
    voter is no longer known, are counted as votes but not as a voter)."""
    per_voter: Counter[str] = Counter()
    for voter, _, _, _, n in rows:
        if voter:
            per_voter[voter] += n
    if len(per_voter) < 10:
        return None  # too few voters for a top 10% to mean anything
    ranked = [v for v, _ in per_voter.most_common()]
    total = sum(n for *_, n in rows)
    top1 = ranked[: math.ceil(len(ranked) / 100)]
    top10 = ranked[: math.ceil(len(ranked) / 10)]
    share1 = sum(per_voter[v] for v in top1) / total
    share10 = sum(per_voter[v] for v in top10) / total
    heavy = set(top10)
    rest = [r for r in rows if r[0] not in heavy]
    before = _ranks(rows, models)
    after = _ranks(rest, models) if rest else before
    moved = [m for m in models if before[m] != after[m]]
    concentrated = len(ranked) >= 100 and share1 >= 0.10
    if not concentrated and not moved:
        return None
    effect = (
        "without the top 10% no model's rank changes"
        if not moved
        else "without the top 10% the ranks change: "
        + ", ".join(f"{m} {before[m]} → {after[m]}" for m in sorted(moved, key=lambda m: before[m]))
    )
    head = (
        f"The top 1% of voters ({len(top1)} of {len(ranked)}) cast {100 * share1:.0f}% of the votes and the top 10% "
        f"cast {100 * share10:.0f}%"
        if len(ranked) >= 100
        else f"The top 10% of voters ({len(top10)} of {len(ranked)}) cast {100 * share10:.0f}% of the votes"
    )
    return Finding("voters", f"{head}; {effect}.")


def cycles(rows: VoterOutcomes, models: list[str], limit: int = 5) -> list[Finding]:
    """Significant three-model cycles: a beats b, b beats c, c beats a."""
    scores: dict[tuple[str, str], list[float]] = {}
    for _, a, b, outcome, n in rows:
        if a == b:
            continue
        s = score_of_a(outcome)
        key, s = ((a, b), s) if a < b else ((b, a), 1.0 - s)
        cell = scores.setdefault(key, [0.0, 0.0, 0.0])  # votes, sum of scores, sum of squared scores
        cell[0] += n
        cell[1] += n * s
        cell[2] += n * s * s
    pairs = max(1, len(scores))
    beats: dict[tuple[str, str], tuple[float, int]] = {}
    for (x, y), (count, total, squares) in scores.items():
        mean = total / count
        # the spread of a vote's score around an even ½ (a decisive vote ¼, a tie 0), the variance if they were even
        null = squares / count - total / count + 0.25
        if count < MIN_PAIR_VOTES or null <= 0:
            continue
        p = 2 * _normal_sf(abs(mean - 0.5) / math.sqrt(null / count))
        if p * pairs < 0.05:
            winner, loser, share = (x, y, mean) if mean > 0.5 else (y, x, 1.0 - mean)
            beats[(winner, loser)] = (share, round(count))
    found = []
    for trio in combinations(models, 3):
        for a, b, c in permutations(trio):
            if a == min(trio) and (a, b) in beats and (b, c) in beats and (c, a) in beats:
                parts = [
                    f"{x} beats {y} ({100 * beats[(x, y)][0]:.0f}% of {counted(beats[(x, y)][1], 'vote')})"
                    for x, y in ((a, b), (b, c), (c, a))
                ]
                found.append(Finding("cycles", "; ".join(parts) + ": a circle no rating can show."))
    return found[:limit]


def stability(
    rows: VoterOutcomes, models: list[str], theta: np.ndarray, *, rounds: int, rng: np.random.Generator
) -> dict[str, float]:
    """Each model's share of bootstrap resamples in which it keeps its place (`theta`'s order) among the ratings."""
    counts = outcome_counts((a, b, o, n) for _, a, b, o, n in rows)
    samples = bootstrap_log_strengths(counts, models, rounds=rounds, rng=rng, start=theta)
    place = np.argsort(np.argsort(-theta, kind="stable"), kind="stable")
    places = np.argsort(np.argsort(-samples, axis=1, kind="stable"), axis=1, kind="stable")
    kept = (places == place[None, :]).mean(axis=0)
    return {model: float(kept[k]) for k, model in enumerate(models)}


def separation(rows: VoterOutcomes, models: list[str], limit: int = 5) -> list[Finding]:
    """Neighbours whose difference is not clear yet, and about how many more votes between them would make it so."""
    counts = outcome_counts((a, b, o, n) for _, a, b, o, n in rows)
    fit = fit_contextual(Matches.from_pair_counts(counts, models), len(models))
    order = np.argsort(-fit.theta, kind="stable")
    found = []
    for upper, lower in pairwise(order):
        d = float(fit.theta[upper] - fit.theta[lower])
        var = float(fit.covariance[upper, upper] + fit.covariance[lower, lower] - 2 * fit.covariance[upper, lower])
        sd = math.sqrt(max(var, 1e-18))
        if d - Z95 * sd > 0:
            continue
        p = _sigmoid(d)
        needed = (1 / (d / Z95) ** 2 - 1 / var) / (p * (1 - p)) if d * POINTS_PER_NAT >= 0.5 else math.inf
        interval = f"95% interval {(d - Z95 * sd) * POINTS_PER_NAT:.0f} to {(d + Z95 * sd) * POINTS_PER_NAT:.0f}"
        if math.isinf(needed):
            said = f"they are level ({interval} points): no number of votes separates two equal models"
        else:
            votes = math.ceil(max(needed, 1))
            more = "more than 100,000 more votes" if votes > 100_000 else "about " + counted(votes, "more vote")
            said = (
                f"{models[upper]} leads by {d * POINTS_PER_NAT:.0f} points ({interval}); {more} between them would "
                "separate them if the lead is real"
            )
        found.append(Finding("separation", f"{models[upper]} and {models[lower]} are not separated: {said}."))
    return found[:limit]


def audit(rows: VoterOutcomes, *, rounds: int = 1000, seed: int = 0) -> Audit:
    """Every check on these votes (self-play rows are left out, as from ratings)."""
    rows = [r for r in rows if r[1] != r[2] and r[4] > 0]
    models = sorted({m for _, a, b, _, _ in rows for m in (a, b)})
    votes = sum(r[4] for r in rows)
    voters = len({r[0] for r in rows if r[0]})  # a pruned vote ("") has no voter any more
    if len(models) < 2:
        return Audit(findings=[], votes=votes, voters=voters, models=models, stability={})
    theta = _board(rows, models)
    kept = stability(rows, models, theta, rounds=rounds, rng=np.random.default_rng(seed))
    findings = [f for f in (position_bias(rows, models),) if f is not None]
    findings += undecided_rates(rows, models)
    findings += [f for f in (voter_concentration(rows, models),) if f is not None]
    findings += cycles(rows, models)
    ordered = _order(theta, models)
    findings += [
        Finding(
            "stability",
            f"{m} keeps its place ({ordered.index(m) + 1}) in only {100 * kept[m]:.0f}% of "
            f"{rounds:,} resamples of the votes.",
        )
        for m in ordered
        if kept[m] < 0.5
    ]
    findings += separation(rows, models)
    return Audit(findings=findings, votes=votes, voters=voters, models=ordered, stability=kept)
