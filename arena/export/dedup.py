"""Remembering which rows were already written: 8-byte fingerprints in sorted arrays, about 8 MB per million rows.

A row's fingerprint is Python's 64-bit keyed hash (SipHash) of its de-duplication fields as canonical JSON: stable
within the export's process, which is all a set of one export needs. The set keeps them in a few sorted
NumPy arrays (runs) whose sizes at least double from the newest to the oldest, so a batch is checked with one
binary search per run and each fingerprint is merged O(log n) times in all. Measured against the former on-disk
SQLite set at 900k rows: see benchmarks/bench_export.py. Two different rows share a fingerprint with probability
about n²/2⁶⁵ for n rows (3·10⁻⁸ at a million rows); such a row would be counted as a duplicate.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray


def digest(key: Any) -> int:
    """A 64-bit fingerprint of a row's content (canonical JSON, SipHash), for this process only."""
    return hash(orjson.dumps(key, option=orjson.OPT_SORT_KEYS))


class SeenSet:
    """A set of 64-bit fingerprints that only grows: 8 bytes each, plus a merge's passing copy."""

    def __init__(self) -> None:
        self._runs: list[NDArray[np.int64]] = []  # sorted, disjoint, oldest (largest) first

    def __len__(self) -> int:
        return sum(len(run) for run in self._runs)

    def add_new(self, digests: list[int]) -> list[bool]:
        """For each fingerprint, True when it was not seen before (earlier in this list included); records all."""
        keys = np.array(digests, dtype=np.int64)
        fresh = np.zeros(len(keys), dtype=bool)
        fresh[np.unique(keys, return_index=True)[1]] = True  # the first of equal keys in this batch
        for run in self._runs:
            at = np.minimum(np.searchsorted(run, keys), len(run) - 1)
            fresh &= run[at] != keys
        self._push(np.sort(keys[fresh]))
        return fresh.tolist()

    def _push(self, run: NDArray[np.int64]) -> None:
        """Add a sorted run of new keys, merging runs while the older one is less than twice the newer."""
        if not len(run):
            return
        runs = self._runs
        runs.append(run)
        while len(runs) > 1 and len(runs[-2]) < 2 * len(runs[-1]):
            newer = runs.pop()
            runs[-1] = np.sort(np.concatenate((runs[-1], newer)), kind="stable")
