"""Audit records, `raw`: everything stored about a battle or chat, voter ids anonymised, IP hashes left out. Pure."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from arena.categories import names
from arena.export.formats.base import RAW_RECORDS, ExportFormat, Judges, Reading, Row, Shaped, Shaping
from arena.store.export_source import RawFeedback, RawRecord, RawVote, StoredTurn


def _turn(t: StoredTurn) -> dict[str, Any]:
    return {
        "turn": t.turn + 1,
        "role": t.role,
        "content": t.content,
        "status": t.status,
        "model": t.model,
        "error": t.error,
        "ttft_ms": t.ttft_ms,
        "total_ms": t.total_ms,
        "tokens": t.tokens,
        "params": t.params,
        "language": t.language,
        "categories": None if t.role != "user" else names(t.categories),
        "created_at": t.created_at.isoformat(),
    }


def _vote(v: RawVote, judges: Judges) -> dict[str, Any]:
    return {
        "turn": v.turn + 1,
        "outcome": v.outcome.value,
        "anonymous": v.anonymous,
        "identity_leak": v.identity_leak,
        "language": v.language,
        "categories": names(v.categories),
        "judge": judges.of(v.voter, v.session_id),
        "created_at": v.created_at.isoformat(),
    }


def _feedback(fb: RawFeedback, judges: Judges) -> dict[str, Any]:
    return {
        "turn": fb.turn + 1,
        "rating": fb.rating,
        "tags": fb.tags,
        "comment": fb.comment,
        "judge": judges(fb.session_id),
        "created_at": fb.created_at.isoformat(),
    }


def raw(record: RawRecord, shaping: Shaping) -> Shaped:
    """Everything stored about a battle or chat, voter ids anonymised, IP hashes left out."""
    judges = shaping.judges
    row = {
        "kind": record.kind,
        "id": record.id,
        "models": record.models,
        "mode": record.mode,
        "status": record.status,
        "anonymous": record.anonymous,
        "identity_leak": record.identity_leak,
        "language": record.language,
        "judge": judges(record.session_id),
        "started_at": record.started_at.isoformat(),
        "finished_at": None if record.finished_at is None else record.finished_at.isoformat(),
        "conversations": {side: [_turn(t) for t in turns] for side, turns in record.conversations.items()},
        "votes": [_vote(v, judges) for v in record.votes],
        "feedback": [_feedback(fb, judges) for fb in record.feedback],
    }
    return Shaped([row])


def _models(row: Row) -> set[str]:
    return set(row["models"].values())


def _moment(row: Row) -> datetime:
    return datetime.fromisoformat(row["started_at"])


RAW = ExportFormat(
    name="raw",
    explain="everything, for audits (every battle and chat with all messages, votes and ratings)",
    trainer="audits (every stored battle and chat, with votes and ratings)",
    reads=(Reading(RAW_RECORDS, raw),),
    models=_models,
    moment=_moment,
    scope="This raw export holds every stored battle and chat, named and self-play ones and those where an answer "
    "revealed a model's identity included (see the `mode` and `identity_leak` fields). ",
)
