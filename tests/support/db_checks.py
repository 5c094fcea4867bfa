"""What must hold in a Corral database whatever strangers sent and whatever broke: checked after faults and fuzzing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from arena.domain import VoteFilter
from arena.store.engine import make_engine
from arena.store.repository import Repository
from tests.support.store_reads import reads

STATUSES = {"open", "voted", "errored", "incomplete"}


def rows(db_url: str, sql: str) -> list[tuple[Any, ...]]:
    """The rows of one read-only query (plain SQL that SQLite and PostgreSQL both accept)."""
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        engine.dispose()


def invariant_violations(db_url: str) -> list[str]:
    """Every broken rule, as sentences; an empty list means the data is sound."""
    problems: list[str] = []
    dup = rows(db_url, "SELECT battle_id, turn_index FROM votes GROUP BY battle_id, turn_index HAVING COUNT(*) > 1")
    problems += [f"round {b}/{t} has more than one vote" for b, t in dup]
    unbacked = rows(
        db_url,
        """SELECT v.battle_id, v.turn_index FROM votes v WHERE (
             SELECT COUNT(*) FROM messages m JOIN conversations c ON m.conversation_id = c.id
             WHERE c.battle_id = v.battle_id AND m.turn_index = v.turn_index AND m.role = 'assistant'
               AND m.status IN ('ok', 'stopped')) != 2""",
    )
    problems += [f"vote on {b}/{t} has no stored, error-free round" for b, t in unbacked]
    excess = rows(
        db_url,
        """SELECT b.id FROM battles b WHERE (SELECT COUNT(*) FROM votes v WHERE v.battle_id = b.id) > (
             SELECT COUNT(DISTINCT m.turn_index) FROM messages m JOIN conversations c ON m.conversation_id = c.id
             WHERE c.battle_id = b.id AND m.role = 'user')""",
    )
    problems += [f"battle {b} has more votes than rounds" for (b,) in excess]
    bad_status = rows(db_url, "SELECT id, status FROM battles")
    problems += [f"battle {b} has status {s!r}" for b, s in bad_status if s not in STATUSES]
    no_vote = "NOT EXISTS (SELECT 1 FROM votes v WHERE v.battle_id = b.id)"
    unvoted = rows(db_url, f"SELECT b.id FROM battles b WHERE b.status = 'voted' AND {no_vote}")
    problems += [f"battle {b} is 'voted' without a vote" for (b,) in unvoted]
    repo = Repository(make_engine(db_url))
    for filters in (VoteFilter(), VoteFilter(include_named=True, include_leaks=True, include_self_play=True)):
        if sorted(repo.pair_outcomes(filters)) != sorted(reads(repo).pair_outcomes_from_votes(filters)):
            problems.append(f"the counts tables differ from a recount of the votes ({filters})")
    return problems


def vote_rows(db_url: str) -> list[tuple[Any, ...]]:
    """Every stored vote, whole, in id order: to compare before and after a fault."""
    return rows(
        db_url, "SELECT id, battle_id, turn_index, outcome, anonymous, session_id, ip_hash FROM votes ORDER BY id"
    )
