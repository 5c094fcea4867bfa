"""How far to trust an AI judge on this arena's own data: agreement with people on the rounds both judged, Cohen's
kappa, per model pair and per language, how often swapping the answers changes its verdict, and whether it favours
contestants of its own family. Pure: rows in, sentences and numbers out; seeded bootstrap intervals."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from arena.domain import Outcome

if TYPE_CHECKING:  # the store builds these rows: numpy only where kappa is computed
    import numpy as np

KINDS = ("a", "b", "tie", "both_bad")
"""The verdicts compared: a slight preference counts as a preference."""
_KIND = {
    Outcome.A: 0,
    Outcome.A_SLIGHTLY: 0,
    Outcome.B: 1,
    Outcome.B_SLIGHTLY: 1,
    Outcome.TIE: 2,
    Outcome.BOTH_BAD: 3,
}
MIN_ROUNDS = 10  # a pair or language with fewer rounds judged by both is not broken out
Z95 = 1.959963984540054


@dataclass(frozen=True)
class Paired:
    """One round judged by a person and by an AI judge."""

    judge: str
    model_a: str
    model_b: str
    language: str | None
    human: Outcome
    ai: Outcome


@dataclass(frozen=True)
class Reading:
    """One stored judgement: the verdict and, with swap, both readings (read back in the original order)."""

    judge: str
    model_a: str
    model_b: str
    first: str
    second: str | None
    verdict: str


@dataclass(frozen=True)
class Rate:
    """A share with its 95% interval, over `n` cases."""

    n: int
    value: float
    lower: float
    upper: float


@dataclass(frozen=True)
class Breakdown:
    """Agreement on one slice (a model pair, a language)."""

    name: str
    rounds: int
    agreement: Rate
    kappa: Rate

    @property
    def sentence(self) -> str:
        """The slice in a line, for the command line and the tab alike."""
        k = self.kappa
        return (
            f"{self.name}: {self.rounds:,} rounds, agreement {100 * self.agreement.value:.0f}%, "
            f"kappa {k.value:.2f} ({k.lower:.2f} to {k.upper:.2f})"
        )


@dataclass
class JudgeAgreement:
    """Everything measured about one judge."""

    judge: str
    rounds: int = 0  # rounds with both a person's and this judge's verdict
    agreement: Rate | None = None
    kappa: Rate | None = None
    by_pair: list[Breakdown] = field(default_factory=list)
    by_language: list[Breakdown] = field(default_factory=list)
    flips: Rate | None = None  # share of swapped readings whose two verdicts differ
    unreadable: Rate | None = None  # share of judgements with no verdict
    self_preference: Rate | None = None  # how often it picks its own kin over another model (decisive verdicts)
    people_preference: Rate | None = None  # how often people picked the kin on the same rounds
    sentences: list[str] = field(default_factory=list)


def wilson(k: int, n: int) -> Rate:
    """The share k/n with its Wilson 95% interval."""
    if n == 0:
        return Rate(0, math.nan, math.nan, math.nan)
    p = k / n
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / (1 + Z95**2 / n)
    return Rate(n, p, max(0.0, centre - half), min(1.0, centre + half))


def _kappa(table: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Cohen's kappa of confusion tables (..., 4, 4) of counts."""
    import numpy as np

    n = table.sum(axis=(-2, -1))
    observed = np.trace(table, axis1=-2, axis2=-1) / n
    expected = (table.sum(axis=-1) * table.sum(axis=-2)).sum(axis=-1) / n**2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(expected < 1, (observed - expected) / (1 - expected), np.nan)


def kappa(pairs: Sequence[tuple[int, int]], *, rounds: int = 1000, seed: int = 0) -> Rate:
    """Cohen's kappa of (person, judge) verdict indices, with a bootstrap 95% interval (the rounds resampled)."""
    import numpy as np

    table = np.zeros((4, 4))
    for human, ai in pairs:
        table[human, ai] += 1
    n = len(pairs)
    if n == 0:
        return Rate(0, math.nan, math.nan, math.nan)
    point = float(_kappa(table))
    rng = np.random.default_rng(seed)
    resampled = rng.multinomial(n, table.ravel() / n, size=rounds).reshape(rounds, 4, 4).astype(np.float64)
    values = _kappa(resampled)
    values = values[~np.isnan(values)]
    if not len(values):
        return Rate(n, point, math.nan, math.nan)
    return Rate(n, point, float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5)))


def _slice(name: str, rows: Sequence[Paired], seed: int) -> Breakdown:
    pairs = [(_KIND[r.human], _KIND[r.ai]) for r in rows]
    agree = sum(h == a for h, a in pairs)
    return Breakdown(name, len(rows), wilson(agree, len(rows)), kappa(pairs, seed=seed))


def judge_agreement(
    paired: Sequence[Paired],
    readings: Sequence[Reading],
    families: Mapping[str, Collection[str]] | None = None,
    *,
    seed: int = 0,
) -> list[JudgeAgreement]:
    """One report per judge seen in `paired` or `readings` (families: judge → its kin among the contestants)."""
    families = families or {}
    by_judge: dict[str, list[Paired]] = defaultdict(list)
    for row in paired:
        by_judge[row.judge].append(row)
    read_by: dict[str, list[Reading]] = defaultdict(list)
    for reading in readings:
        read_by[reading.judge].append(reading)
    reports = []
    for judge in sorted(set(by_judge) | set(read_by)):
        report = JudgeAgreement(judge)
        rows = by_judge.get(judge, [])
        if rows:
            whole = _slice("all", rows, seed)
            report.rounds, report.agreement, report.kappa = whole.rounds, whole.agreement, whole.kappa
            report.by_pair = _breakdowns(rows, lambda r: " vs ".join(sorted((r.model_a, r.model_b))), seed)
            report.by_language = _breakdowns(rows, lambda r: r.language or "unknown", seed)
        judged = read_by.get(judge, [])
        swapped = [r for r in judged if r.second is not None and r.first != "none" and r.second != "none"]
        if swapped:
            report.flips = wilson(sum(r.first != r.second for r in swapped), len(swapped))
        if judged:
            report.unreadable = wilson(sum(r.verdict == "none" for r in judged), len(judged))
        kin = set(families.get(judge, ()))
        if kin:
            report.self_preference, report.people_preference = _kin(rows, kin)
        report.sentences = _sentences(report)
        reports.append(report)
    return reports


def _breakdowns(rows: Sequence[Paired], key: object, seed: int) -> list[Breakdown]:
    groups: dict[str, list[Paired]] = defaultdict(list)
    for row in rows:
        groups[key(row)].append(row)  # type: ignore[operator]
    return [_slice(name, group, seed) for name, group in sorted(groups.items()) if len(group) >= MIN_ROUNDS]


def _kin(rows: Sequence[Paired], kin: set[str]) -> tuple[Rate | None, Rate | None]:
    """On the rounds both judged where exactly one side is the judge's kin: how often the judge chose the kin,
    and how often people did (each over its own decisive verdicts)."""

    def chose_kin(row: Paired, outcome: Outcome) -> bool | None:
        if (row.model_a in kin) == (row.model_b in kin) or _KIND[outcome] > 1:
            return None  # both or neither side is kin, or no preference was given
        return (_KIND[outcome] == 0) == (row.model_a in kin)

    rates = []
    for picks in ([chose_kin(r, r.ai) for r in rows], [chose_kin(r, r.human) for r in rows]):
        decided = [p for p in picks if p is not None]
        rates.append(wilson(sum(decided), len(decided)) if decided else None)
    return rates[0], rates[1]


def _pct(rate: Rate) -> str:
    return f"{100 * rate.value:.0f}% (95% interval {100 * rate.lower:.0f}–{100 * rate.upper:.0f}%)"


def _sentences(r: JudgeAgreement) -> list[str]:
    said = []
    if r.agreement is not None and r.kappa is not None:
        said.append(
            f"On {r.rounds:,} rounds people also judged, {r.judge} agreed {_pct(r.agreement)}; Cohen's kappa "
            f"{r.kappa.value:.2f} (95% interval {r.kappa.lower:.2f} to {r.kappa.upper:.2f}), where 0 is chance and 1 "
            "is full agreement."
        )
    else:
        said.append(f"{r.judge} has judged no round a person also judged yet: no agreement can be measured.")
    if r.flips is not None:
        said.append(f"Swapping the answers changed its verdict in {_pct(r.flips)} of {r.flips.n:,} readings.")
    if r.unreadable is not None and r.unreadable.value > 0:
        said.append(f"{_pct(r.unreadable)} of its {r.unreadable.n:,} judgements had no readable verdict.")
    if r.self_preference is not None:
        people = f", where people chose it {_pct(r.people_preference)}" if r.people_preference is not None else ""
        said.append(
            f"On those rounds, against other models, it chose its own family {_pct(r.self_preference)} of "
            f"{r.self_preference.n:,} decisive verdicts{people}."
        )
    return said
