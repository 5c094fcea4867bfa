"""TRL's unpaired preference format, `kto`: one row per answer, from battle votes and single-chat ratings. Pure."""

from __future__ import annotations

from typing import Any, assert_never

from arena.domain import Outcome
from arena.export.formats.base import (
    JUDGED_ROUNDS,
    RATED_ANSWERS,
    ExportFormat,
    Reading,
    Shaped,
    Shaping,
    Skip,
    both_answered,
    conversation_type,
    messages,
    metadata_columns,
    row_model,
    vote_metadata,
    voted_at,
)
from arena.store.export_source import JudgedRound, RatedAnswer


def labels(outcome: Outcome) -> tuple[bool, bool] | None:
    """(label of A's answer, label of B's answer); None for a tie, which says nothing about either answer."""
    match outcome:
        case Outcome.A | Outcome.A_SLIGHTLY:  # the preferred answer is the desirable one, as for DPO pairs
            return True, False
        case Outcome.B | Outcome.B_SLIGHTLY:
            return False, True
        case Outcome.BOTH_BAD:
            return False, False
        case Outcome.TIE:
            return None
        case _:
            assert_never(outcome)


def kto(vote: JudgedRound, shaping: Shaping) -> Shaped:
    """Unpaired preference: the winner `label: true`, the loser `false`; both bad → both `false`; ties skipped."""
    marks = labels(vote.outcome)
    if marks is None:
        return Shaped([], Skip.TIE)
    if not both_answered(vote):
        return Shaped([], Skip.EMPTY)
    common = vote_metadata(vote, shaping.judges)
    del common["battle_id"]  # the row's `id` says which battle
    rows = [
        {
            "prompt": history[:-1],
            "completion": history[-1:],
            "label": label,
            "model": model,
            "source": "battle",
            "id": vote.battle_id,
            **common,
        }
        for history, model, label in zip(
            (vote.history_a, vote.history_b), (vote.model_a, vote.model_b), marks, strict=True
        )
    ]
    return Shaped(rows)


def kto_feedback(rated: RatedAnswer, shaping: Shaping) -> Shaped:
    """A single-chat 👍 (`label: true`) or 👎 (`label: false`) as an unpaired preference row."""
    if not rated.answer.strip() or not rated.prompt:
        return Shaped([], Skip.EMPTY)
    row = {
        "prompt": messages(rated.prompt),
        "completion": [{"role": "assistant", "content": rated.answer}],
        "label": rated.up,
        "model": rated.model,
        "source": "chat",
        "id": rated.conversation_id,
        "turn": rated.turn + 1,
        "language": rated.language or "unknown",
        "self_play": False,
        "anonymous": False,
        "stopped": False,
        "judge": shaping.judges(rated.session_id),
        "voted_at": rated.rated_at.isoformat(),
    }
    return Shaped([row])


def kto_schema(_shaping: Shaping) -> Any:
    """The `kto` Parquet schema."""
    import pyarrow as pa

    msgs = conversation_type()
    head = [("prompt", msgs), ("completion", msgs), ("label", pa.bool_())]
    return pa.schema([*head, ("model", pa.string()), ("source", pa.string()), ("id", pa.string()), *metadata_columns()])


KTO = ExportFormat(
    name="kto",
    explain="one row per answer, winners `true`, losers and both-bad answers `false`, plus the Chat tab's "
    "Good answer / Bad answer ratings",
    trainer="TRL `KTOTrainer` (unpaired preference)",
    reads=(Reading(JUDGED_ROUNDS, kto), Reading(RATED_ANSWERS, kto_feedback)),
    models=row_model,
    moment=voted_at,
    dedup=("prompt", "completion", "label"),
    schema=kto_schema,
)
