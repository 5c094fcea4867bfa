"""The capacity search: the largest load level that still meets a target, from a few measured levels.

Pure: it is handed the levels already measured and a way to measure one more (`probe`), and decides which
level to try next: first down by halving while even the smallest level fails (down to 1), then by bisection
between the largest passing level and the smallest failing one, within a budget of extra runs. It assumes
that more load is never better; when measurements disagree (a level fails below one that passes) the smallest
failing level bounds the answer, so the capacity reported is never above a level seen to fail.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

R = TypeVar("R")


@dataclass(frozen=True)
class Capacity(Generic[R]):
    """The answer, the levels in the order they were tried, and every level's result."""

    capacity: int  # 0 when even one unit of load fails
    tried: list[int]
    results: dict[int, R] = field(default_factory=dict)
    exact: bool = True  # False when the budget ran out before the boundary was pinned to one level
    above_ladder: bool = False  # True when every level passed: the capacity is at least this much


def bounds(known: Mapping[int, bool]) -> tuple[int | None, int | None]:
    """(largest passing level below the smallest failing one, smallest failing level); None where there is none."""
    failing = [n for n, ok in known.items() if not ok]
    hi = min(failing) if failing else None
    passing = [n for n, ok in known.items() if ok and (hi is None or n < hi)]
    return (max(passing) if passing else None), hi


def next_level(known: Mapping[int, bool]) -> int | None:
    """The level to measure next, or None when the boundary is found (or every level passed)."""
    lo, hi = bounds(known)
    if hi is None:
        return None
    if lo is None:
        return None if hi <= 1 else hi // 2
    mid = (lo + hi) // 2
    return None if mid == lo else mid


def answer(known: Mapping[int, bool]) -> int:
    """The capacity the measurements support: the largest passing level below every failing one (0 if none)."""
    lo, hi = bounds(known)
    if hi is None:
        return max(known, default=0)
    return lo or 0


async def find_capacity(
    probe: Callable[[int], Awaitable[R]],
    ok: Callable[[R], bool],
    ladder: Mapping[int, R],
    *,
    extra_runs: int,
) -> Capacity[R]:
    """Search from the `ladder` results already measured, calling `probe` for at most `extra_runs` more levels."""
    results = dict(ladder)
    tried = list(ladder)
    known = {n: ok(r) for n, r in results.items()}
    for _ in range(extra_runs):
        n = next_level(known)
        if n is None or n in known:
            break
        results[n] = await probe(n)
        tried.append(n)
        known[n] = ok(results[n])
    _, hi = bounds(known)
    return Capacity(
        capacity=answer(known),
        tried=tried,
        results=results,
        exact=next_level(known) is None,
        above_ladder=hi is None,
    )
