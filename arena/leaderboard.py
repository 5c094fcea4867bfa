"""The leaderboard: Bradley–Terry ratings with 95% intervals (bootstrap or sandwich), ranks and matrices, from vote
counts."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import numpy as np

from arena.agreement import JudgeAgreement, judge_agreement
from arena.audit import Audit, audit
from arena.contextual_bt import (
    Z95,
    Matches,
    floor_thin_records,
    model_covariance,
    reported_sd,
    thin_records,
)
from arena.domain import Outcome, VoteFilter
from arena.rating_methods import BradleyTerry, RatingMethod
from arena.ratings import (
    DEFAULT_PRIOR,
    POINTS_PER_NAT,
    Strengths,
    arena_ranks,
    outcome_counts,
    to_ratings,
    win_matrix,
    win_rate_matrix,
)
from arena.store.repository import Repository
from arena.style_board import StyleBoard, build_style_board

PairOutcomes = Sequence[tuple[str, str, Outcome, int]]

THIN = (
    " A model with fewer than 30 votes, or one that never won or never lost, gets at least its model-based "
    "interval: resampling so thin a record cannot show its uncertainty."
)
INTERVALS: dict[str, str] = {
    "bootstrap": "95% intervals from {rounds} bootstrap resamples of the votes." + THIN,
    "sandwich": "95% intervals from the sandwich (robust) covariance: analytic, no resampling." + THIN,
}
"""How the 95% intervals can be computed, each with the sentence that says so."""


@dataclass(frozen=True)
class Standing:
    """One model's line in the leaderboard (no rank or interval before its first vote)."""

    model: str
    votes: int
    rank: int | None = None
    rating: float | None = None
    lower: float | None = None
    upper: float | None = None
    win_rate: float | None = None


@dataclass(frozen=True)
class Leaderboard:
    """Standings (best first), the pairwise matrices over the rated models, and how it was computed."""

    standings: list[Standing]
    models: list[str]  # rated models, in standings order: the axes of the matrices
    win_rates: list[list[float | None]]
    battles: list[list[int]]
    votes: int
    rounds: int
    intervals: str = "bootstrap"  # a key of INTERVALS
    computed_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    db_seconds: float = 0.0
    fit_seconds: float = 0.0

    @property
    def intervals_taken(self) -> str:
        """How the intervals were taken, in a few words for status lines."""
        return f"{self.rounds} bootstrap rounds" if self.intervals == "bootstrap" else "sandwich intervals"


def build_leaderboard(
    outcomes: PairOutcomes,
    *,
    models: Sequence[str] = (),
    rounds: int = 1000,
    seed: int = 0,
    anchor: tuple[str, float] | None = None,
    prior: float = DEFAULT_PRIOR,
    method: RatingMethod | None = None,
    intervals: str = "bootstrap",
) -> Leaderboard:
    """Fit, take the intervals (bootstrap or sandwich) and rank (Bradley–Terry unless `method` says otherwise);
    `models` adds configured models that have no votes yet (listed last)."""
    if method is None:
        method = BradleyTerry(prior)
    if intervals not in INTERVALS:
        raise ValueError(f"unknown intervals '{intervals}' (known: {', '.join(INTERVALS)})")
    rng = np.random.default_rng(seed)
    counts = outcome_counts(outcomes)
    rated = sorted({m for pair in counts for m in pair})
    wins = win_matrix(counts, rated)
    theta = method.fit(counts, rated, rng) if rated else np.zeros(0)
    anchor_index = rated.index(anchor[0]) if anchor is not None and anchor[0] in rated else None
    anchor_rating = anchor[1] if anchor is not None else 1000.0
    if not rated:
        empty = [Standing(model=m, votes=0) for m in models]
        return Leaderboard(
            standings=empty, models=[], win_rates=[], battles=[], votes=0, rounds=rounds, intervals=intervals
        )
    point = to_ratings(theta, anchor_index=anchor_index, anchor_rating=anchor_rating)
    if intervals == "sandwich":
        covariance = method.sandwich(counts, rated, theta)
        if covariance is None:
            raise ValueError(f"The {method.name} rating method has no sandwich intervals: use bootstrap intervals.")
        half = Z95 * reported_sd(covariance, len(rated), anchor_index) * POINTS_PER_NAT
        lower, upper = point - half, point + half
    else:
        samples = to_ratings(
            method.bootstrap(counts, rated, rounds=rounds, rng=rng, start=theta),
            anchor_index=anchor_index,
            anchor_rating=anchor_rating,
        )
        lower, upper = np.percentile(samples, 2.5, axis=0), np.percentile(samples, 97.5, axis=0)
    thin = thin_records((wins + wins.T).sum(axis=1), wins.sum(axis=1))
    if thin.any():  # the Bradley–Terry information of the votes, whatever the method
        matches = Matches.from_pair_counts(counts, rated)
        covariance = model_covariance(matches, theta, len(rated), prior=getattr(method, "prior", prior))
        floor = Z95 * reported_sd(covariance, len(rated), anchor_index) * POINTS_PER_NAT
        lower, upper = floor_thin_records(point, lower, upper, thin, floor)
    standings = _standings(rated, wins, point, lower, upper)
    standings.sort(key=lambda s: (s.rank or 0, -(s.rating or 0.0)))
    order = [rated.index(s.model) for s in standings]
    rates = win_rate_matrix(wins)[np.ix_(order, order)]
    battles = (wins + wins.T)[np.ix_(order, order)]
    standings += [Standing(model=m, votes=0) for m in models if m not in rated]
    return Leaderboard(
        standings=standings,
        models=[s.model for s in standings if s.rank is not None],
        win_rates=[[None if math.isnan(x) else float(x) for x in row] for row in rates],
        battles=[[round(float(x)) for x in row] for row in battles],
        votes=int(sum(n for *_, n in outcomes)),
        rounds=rounds,
        intervals=intervals,
    )


def _standings(
    rated: list[str], wins: Strengths, point: Strengths, lower: Strengths, upper: Strengths
) -> list[Standing]:
    """One standing per rated model (in `rated` order): its rank by the intervals, votes and win rate."""
    ranks = arena_ranks(lower, upper)
    votes = wins + wins.T
    per_model, won = votes.sum(axis=1), wins.sum(axis=1)
    return [
        Standing(
            model=name,
            votes=round(float(per_model[k])),
            rank=ranks[k],
            rating=float(point[k]),
            lower=float(lower[k]),
            upper=float(upper[k]),
            win_rate=float(won[k] / per_model[k]) if per_model[k] else None,
        )
        for k, name in enumerate(rated)
    ]


class LeaderboardService:
    """Reads vote counts through the repository and builds the leaderboard, timing both halves."""

    def __init__(
        self,
        repo: Repository,
        *,
        models: Sequence[str] = (),
        method: RatingMethod | None = None,
        intervals: str = "bootstrap",
        families: Mapping[str, Collection[str]] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._repo = repo
        self._families = dict(families or {})  # judge → its kin among the contestants (self-preference)
        self._models = list(models)
        self._method: RatingMethod = method or BradleyTerry()
        self.intervals = intervals  # a key of INTERVALS
        self._clock = clock

    @property
    def method(self) -> RatingMethod:
        """How the ratings are fitted."""
        return self._method

    @property
    def interval_kinds(self) -> list[str]:
        """The kinds of interval this service's method can take (keys of INTERVALS), the configured one first."""
        kinds = [k for k in INTERVALS if k != "sandwich" or self._method.has_likelihood]
        return sorted(kinds, key=lambda k: k != self.intervals)

    def languages(self) -> list[str]:
        """Languages with votes, most voted first."""
        return self._repo.languages()

    def voter_kinds(self) -> list[str]:
        """Whose votes have been counted: "human", then each "judge:NAME"."""
        return self._repo.voter_kinds()

    def agreement(self, filters: VoteFilter = VoteFilter(), *, seed: int = 0) -> list[JudgeAgreement]:
        """How far each AI judge agrees with people on the rounds both judged (`arena.agreement`)."""
        paired = self._repo.paired_verdicts(filters)
        return judge_agreement(paired, self._repo.judge_readings(filters), self._families, seed=seed)

    def style_board(self, filters: VoteFilter = VoteFilter()) -> StyleBoard:
        """Ratings with answer length and markdown held equal, and what each is worth (`arena.style_board`)."""
        return build_style_board(self._repo.style_votes(filters))

    def audit(self, filters: VoteFilter = VoteFilter(), *, rounds: int = 1000, seed: int = 0) -> Audit:
        """The audit of the votes these filters keep (`arena.audit`)."""
        return audit(self._repo.voter_outcomes(filters), rounds=rounds, seed=seed)

    def compute(
        self, filters: VoteFilter = VoteFilter(), *, rounds: int = 1000, seed: int = 0, intervals: str | None = None
    ) -> Leaderboard:
        """The leaderboard for these filters, with DB and fit times (intervals: the service's unless named)."""
        start = self._clock()
        outcomes = self._repo.pair_outcomes(filters)
        fetched = self._clock()
        taken = intervals or self.intervals
        board = build_leaderboard(
            outcomes, models=self._models, rounds=rounds, seed=seed, method=self._method, intervals=taken
        )
        done = self._clock()
        return replace(board, db_seconds=fetched - start, fit_seconds=done - fetched)
