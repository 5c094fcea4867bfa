"""Storing an AI judge's reading of a round: the judgement itself and, when it is a verdict, the judge's vote and
its count cells, in one transaction. Not a hot path (judges are paced), so plain SQL through a Session."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, text

from arena.store.hot_writes import CELL, COUNT_DAY, COUNT_TOTAL, VOTE_CATEGORIES, VOTE_COLUMNS, VOTE_STYLE

INSERT_JUDGEMENT = text(
    """
    INSERT INTO judgements (battle_id, turn_index, judge, verdict, first_verdict, second_verdict, first_text,
                            second_text, judge_ms, error, created_at)
    VALUES (:battle_id, :turn_index, :judge, :verdict, :first_verdict, :second_verdict, :first_text, :second_text,
            :judge_ms, :error, :now)"""
)
# the judge saw no names (anonymous); the round's own language and the battle's leak flag, as a person's vote
ROUND_LANGUAGE = (
    "(SELECT language FROM messages WHERE conversation_id = :conv_a AND turn_index = :turn_index AND role = 'user')"
)
INSERT_JUDGE_VOTE = text(
    f"""
    INSERT INTO votes ({VOTE_COLUMNS}, voter)
    SELECT id, :turn_index, :outcome, true, :session_id, NULL, :now, identity_leak, {ROUND_LANGUAGE},
           {VOTE_CATEGORIES}, {VOTE_STYLE}, :voter
    FROM battles WHERE id = :battle_id"""
)
_CELL_OF_VOTE = """
    SELECT b.model_a, b.model_b, v.outcome, v.anonymous, v.identity_leak, b.mode, COALESCE(v.language, 'unknown'),
           v.categories, v.voter{day}, 1
    FROM votes v JOIN battles b ON b.id = v.battle_id
    WHERE v.battle_id = :battle_id AND v.turn_index = :turn_index AND v.voter = :voter"""
COUNT_JUDGE_DAY = text(f"INSERT INTO vote_counts ({CELL}, day, count) {_CELL_OF_VOTE.format(day=', :day')} {COUNT_DAY}")
COUNT_JUDGE_TOTAL = text(f"INSERT INTO vote_totals ({CELL}, count) {_CELL_OF_VOTE.format(day='')} {COUNT_TOTAL}")


# an automatic battle is over once judged (a person's battle keeps the status its voter gave it)
AUTO_DONE = text(
    "UPDATE battles SET status = 'voted', finished_at = :now "
    "WHERE id = :battle_id AND mode = 'auto' AND status = 'open'"
)


def record_judgement(s: Connection, values: Mapping[str, Any], outcome: str | None) -> None:
    """Store a judgement (`values`: battle_id, turn_index, judge, verdict, first/second verdict and text, judge_ms,
    error, now, day, conv_a, conv_b, voter; converted for the driver) and, with an `outcome`, the judge's vote and
    both count cells."""
    s.execute(INSERT_JUDGEMENT, values)
    s.execute(AUTO_DONE, values)
    if outcome is None:
        return
    vote = {**values, "outcome": outcome, "session_id": values["voter"]}
    s.execute(INSERT_JUDGE_VOTE, vote)
    s.execute(COUNT_JUDGE_DAY, vote)
    s.execute(COUNT_JUDGE_TOTAL, vote)
