"""Progress bars for long weight operations (tqdm on stderr)."""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm  # type: ignore[import-untyped]


def progress_bar(total: int, desc: str, *, enabled: bool) -> Any:
    """A byte-counting tqdm bar on stderr, or a silent one when `enabled` is false."""
    return tqdm(
        total=total,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        file=sys.stderr,
        disable=not enabled,
        dynamic_ncols=True,
    )
