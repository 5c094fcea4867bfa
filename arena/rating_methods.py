"""Rating methods: one table of what the leaderboard and active sampling fit ratings with.

A method turns pair counts into natural-log strengths (one per model) and refits them on bootstrap resamples for
the confidence intervals. Everything else (the rating scale, ranks, matrices, pair choice) is shared, so adding a
method is one entry in `RATING_METHODS` and one module with its class.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from numpy.random import Generator

from arena.elo import OnlineElo
from arena.ratings import DEFAULT_PRIOR, PairCounts, Strengths, bootstrap_log_strengths, fit_log_strengths, win_matrix


class RatingMethod(Protocol):
    """What a rating method provides; strengths are natural logs, in the order of `models`."""

    @property
    def name(self) -> str:
        """The name the registry knows it by."""
        ...

    @property
    def summary(self) -> str:
        """One sentence for the leaderboard page and the CLI."""
        ...

    @property
    def has_likelihood(self) -> bool:
        """Whether the fit maximises a likelihood, so `sandwich` gives intervals."""
        ...

    def fit(self, counts: PairCounts, models: list[str], rng: Generator) -> Strengths:
        """The point estimate of each model's log-strength."""
        ...

    def bootstrap(
        self, counts: PairCounts, models: list[str], *, rounds: int, rng: Generator, start: Strengths
    ) -> Strengths:
        """Log-strengths refitted on `rounds` resamples of the votes: an array (rounds, models)."""
        ...

    def sandwich(self, counts: PairCounts, models: list[str], theta: Strengths) -> Strengths | None:
        """The sandwich (robust) covariance of the log-strengths at `theta`, (models, models); None where the
        method has no likelihood to take it from."""
        ...


@dataclass(frozen=True)
class BradleyTerry:
    """Penalised maximum-likelihood Bradley–Terry (ties count half), as Chatbot Arena's leaderboard."""

    prior: float = DEFAULT_PRIOR
    name: str = "bradley-terry"
    summary: str = "Bradley–Terry maximum likelihood over all votes (order does not matter)."
    has_likelihood: bool = True

    def fit(self, counts: PairCounts, models: list[str], rng: Generator) -> Strengths:
        """The penalised maximum-likelihood fit."""
        return fit_log_strengths(win_matrix(counts, models), prior=self.prior)

    def bootstrap(
        self, counts: PairCounts, models: list[str], *, rounds: int, rng: Generator, start: Strengths
    ) -> Strengths:
        """Batched refits on multinomial resamples of the pair counts, started from the full fit."""
        return bootstrap_log_strengths(counts, models, rounds=rounds, rng=rng, prior=self.prior, start=start)

    def sandwich(self, counts: PairCounts, models: list[str], theta: Strengths) -> Strengths | None:
        """J⁻¹ M J⁻¹ of the penalised likelihood. A slight preference counts as half a win and half a tie, as in the
        fit and the bootstrap, so its share of M is that of two half votes rather than of one ¾ score (larger near
        an even pair)."""
        from arena.contextual_bt import Matches, sandwich_covariance

        return sandwich_covariance(Matches.from_pair_counts(counts, models), theta, len(models), prior=self.prior)


DEFAULT_METHOD = "bradley-terry"
RATING_METHODS: dict[str, Callable[[], RatingMethod]] = {
    "bradley-terry": BradleyTerry,
    "elo": OnlineElo,
}
"""Every rating method by name: the one place a method is declared."""


def rating_method(name: str = DEFAULT_METHOD) -> RatingMethod:
    """The method called `name`; an unknown name is refused with the known ones."""
    try:
        return RATING_METHODS[name]()
    except KeyError:
        raise ValueError(f"unknown rating method '{name}' (known: {', '.join(RATING_METHODS)})") from None
