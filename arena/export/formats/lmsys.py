"""Chatbot Arena battle records, `lmsys`: FastChat's schema, one record per judged round. Pure.

FastChat's released records (`chatbot_arena_conversations`) end at `tstamp`; its later battle files add the
question's categories as `category_tag` (one entry per tagger and version, e.g. "math_v0.1") and `is_code`.
Corral fills both from its own rules, under its own tagger name, so the two taggers are never mistaken.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, assert_never

from arena.categories import CATEGORIES, bit
from arena.domain import Outcome
from arena.export.formats.base import (
    JUDGED_ROUNDS,
    ExportFormat,
    Reading,
    Row,
    Shaped,
    Shaping,
    conversation_type,
)
from arena.store.export_source import JudgedRound

CATEGORY_TAGGER = "corral_rules_v1"  # arena.categories: its rules, versioned like FastChat's taggers
CODING = bit("coding")
_QUESTION_NAMESPACE = uuid.UUID("6f0c7c1e-4d0b-4c36-9d5e-8b3f1f0e2a11")  # fixed: question ids repeat across exports


def winner(outcome: Outcome) -> str:
    """FastChat's `winner` value for an outcome."""
    match outcome:
        case Outcome.A | Outcome.A_SLIGHTLY:  # FastChat's records have no slight preference: the winner stands
            return "model_a"
        case Outcome.B | Outcome.B_SLIGHTLY:
            return "model_b"
        case Outcome.TIE:
            return "tie"
        case Outcome.BOTH_BAD:
            return "tie (bothbad)"
        case _:
            assert_never(outcome)


LMSYS_WINNER: dict[Outcome, str] = {outcome: winner(outcome) for outcome in Outcome}


def lmsys(vote: JudgedRound, shaping: Shaping) -> Shaped:
    """A Chatbot Arena battle record, exactly FastChat's schema (one per judged round)."""
    row = {
        "question_id": uuid.uuid5(_QUESTION_NAMESPACE, f"{vote.battle_id}/{vote.turn}").hex,
        "model_a": vote.model_a,
        "model_b": vote.model_b,
        "winner": LMSYS_WINNER[vote.outcome],
        "judge": shaping.judges.of(vote.voter, vote.session_id),
        "conversation_a": vote.history_a,
        "conversation_b": vote.history_b,
        "turn": vote.turn + 1,
        "anony": vote.anonymous,
        "language": vote.language or "unknown",
        "tstamp": vote.voted_at.timestamp(),
        "category_tag": {CATEGORY_TAGGER: {c.name: bool(vote.categories & c.bit) for c in CATEGORIES}},
        "is_code": bool(vote.categories & CODING),
    }
    return Shaped([row])


def lmsys_schema(_shaping: Shaping) -> Any:
    """The `lmsys` Parquet schema, in FastChat's column order."""
    import pyarrow as pa

    msgs = conversation_type()
    return pa.schema(
        [
            ("question_id", pa.string()),
            ("model_a", pa.string()),
            ("model_b", pa.string()),
            ("winner", pa.string()),
            ("judge", pa.string()),
            ("conversation_a", msgs),
            ("conversation_b", msgs),
            ("turn", pa.int32()),
            ("anony", pa.bool_()),
            ("language", pa.string()),
            ("tstamp", pa.float64()),
            ("category_tag", pa.struct([(CATEGORY_TAGGER, pa.struct([(c.name, pa.bool_()) for c in CATEGORIES]))])),
            ("is_code", pa.bool_()),
        ]
    )


def _models(row: Row) -> set[str]:
    return {row["model_a"], row["model_b"]}


def _moment(row: Row) -> datetime:
    return datetime.fromtimestamp(row["tstamp"], UTC)


LMSYS = ExportFormat(
    name="lmsys",
    explain="Chatbot Arena battle records (FastChat's schema), one per vote",
    trainer="Chatbot Arena analysis notebooks (FastChat's battle record schema)",
    reads=(Reading(JUDGED_ROUNDS, lmsys),),
    models=_models,
    moment=_moment,
    schema=lmsys_schema,
)
