"""Which voters' votes a filter keeps, as a condition on a `voter` column (votes and count cells alike)."""

from __future__ import annotations

from typing import Any

from arena.domain import JUDGE_PREFIX, check_voters


def voters_kept(column: Any, voters: str) -> Any:
    """The condition on a voter column that keeps the votes `voters` names (see VoteFilter), or None for all."""
    match check_voters(voters):
        case "all":
            return None
        case "judges":
            return column.like(JUDGE_PREFIX + "%")
        case kind:
            return column == kind
