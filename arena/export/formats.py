"""Shaping judged rounds into rows: TRL's preference formats, LMSYS battle records and raw audit records. Pure.

Each shaper returns the rows for one vote (possibly none) and, for rows it drops, the reason. Conversations are
TRL's conversational form: lists of {"role", "content"}.

Multi-turn battles: the two sides' histories differ after the first round (each model saw its own earlier
answers). A DPO `prompt` is the history that the chosen answer continued; `kto` and `reward` rows give each answer
its own history.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from arena.store.export_source import JudgedRound, RatedAnswer, RawRecord, Turn

FORMATS = ("dpo", "kto", "reward", "lmsys", "raw")
PAIRED = ("dpo", "reward")  # formats whose rows are chosen/rejected pairs
# the columns that make two rows the same training example, for the formats whose duplicates are dropped
TRAINING_FIELDS = {
    "dpo": ("prompt", "chosen", "rejected"),
    "reward": ("chosen", "rejected"),
    "kto": ("prompt", "completion", "label"),
}
_QUESTION_NAMESPACE = uuid.UUID("6f0c7c1e-4d0b-4c36-9d5e-8b3f1f0e2a11")  # fixed: question ids repeat across exports
LMSYS_WINNER = {"a": "model_a", "b": "model_b", "tie": "tie", "both_bad": "tie (bothbad)"}


class Skip:
    """Why a vote gives no row (the summary counts them)."""

    TIE = "tie (not a preference)"
    BOTH_BAD = "both bad (not a preference)"
    EMPTY = "an answer is empty"
    DUPLICATE = "duplicate of an earlier row"


@dataclass(frozen=True)
class Shaped:
    """The rows one vote (or rating, or record) becomes, and the reason for any it drops."""

    rows: list[dict[str, Any]]
    skipped: str | None = None


class Judges:
    """Anonymous, stable voter ids: a keyed hash of the session id, so votes of one voter group without naming it."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._recent: dict[str, str] = {}  # voters cast several votes in a row; bounded, so memory stays flat

    def __call__(self, session_id: str) -> str:
        """`arena_user_<12 hex>` for this session."""
        judge = self._recent.get(session_id)
        if judge is None:
            if len(self._recent) >= 50_000:
                self._recent.clear()
            judge = "arena_user_" + hmac.new(self._key, session_id.encode(), hashlib.sha256).hexdigest()[:12]
            self._recent[session_id] = judge
        return judge


def messages(turns: list[Turn]) -> list[dict[str, str]]:
    """TRL's conversational form."""
    return [{"role": t.role, "content": t.content} for t in turns]


def _sides(vote: JudgedRound) -> tuple[list[Turn], list[Turn], str, str] | None:
    """(winner's history, loser's history, winner, loser) for a decisive vote, else None."""
    if vote.outcome == "a":
        return vote.history_a, vote.history_b, vote.model_a, vote.model_b
    if vote.outcome == "b":
        return vote.history_b, vote.history_a, vote.model_b, vote.model_a
    return None


def _not_pair(vote: JudgedRound) -> str | None:
    if vote.outcome == "tie":
        return Skip.TIE
    if vote.outcome == "both_bad":
        return Skip.BOTH_BAD
    return None


def _answered(history: list[Turn]) -> bool:
    return (
        bool(history)
        and history[-1].role == "assistant"
        and not history[-1].content.isspace()
        and bool(history[-1].content)
    )


def _empty(a: list[Turn], b: list[Turn]) -> bool:
    return not (_answered(a) and _answered(b))


def _stopped(history: list[Turn]) -> bool:
    return bool(history) and history[-1].status == "stopped"


def _common(vote: JudgedRound, judges: Judges) -> dict[str, Any]:
    return {
        "battle_id": vote.battle_id,
        "turn": vote.turn + 1,
        "language": vote.language or "unknown",
        "self_play": vote.mode == "self_play",
        "anonymous": vote.anonymous,
        "stopped": _stopped(vote.history_a) or _stopped(vote.history_b),
        "judge": judges(vote.session_id),
        "voted_at": vote.voted_at.isoformat(),
    }


def dpo(vote: JudgedRound, judges: Judges) -> Shaped:
    """Explicit-prompt conversational preference: history as `prompt`, the two answers as `chosen`/`rejected`."""
    if (reason := _not_pair(vote)) is not None:
        return Shaped([], reason)
    if _empty(vote.history_a, vote.history_b):
        return Shaped([], Skip.EMPTY)
    won, lost, winner, loser = _sides(vote) or ([], [], "", "")
    row = {
        "prompt": messages(won[:-1]),
        "chosen": messages(won[-1:]),
        "rejected": messages(lost[-1:]),
        "model_chosen": winner,
        "model_rejected": loser,
        **_common(vote, judges),
    }
    return Shaped([row])


def reward(vote: JudgedRound, judges: Judges, strengths: Mapping[str, float] | None = None) -> Shaped:
    """Implicit-prompt preference: whole conversations; with `strengths`, a margin column.

    The margin is how much more likely the winning model is to win than the loser, in natural-log odds from the
    leaderboard's Bradley–Terry fit, floored at 0: an upset carries no extra margin.
    """
    if (reason := _not_pair(vote)) is not None:
        return Shaped([], reason)
    if _empty(vote.history_a, vote.history_b):
        return Shaped([], Skip.EMPTY)
    won, lost, winner, loser = _sides(vote) or ([], [], "", "")
    row: dict[str, Any] = {"chosen": messages(won), "rejected": messages(lost)}
    if strengths is not None:
        row["margin"] = round(max(0.0, strengths.get(winner, 0.0) - strengths.get(loser, 0.0)), 4)
    row |= {"model_chosen": winner, "model_rejected": loser, **_common(vote, judges)}
    return Shaped([row])


def kto(vote: JudgedRound, judges: Judges) -> Shaped:
    """Unpaired preference: the winner `label: true`, the loser `false`; both bad → both `false`; ties skipped."""
    if vote.outcome == "tie":
        return Shaped([], Skip.TIE)
    if _empty(vote.history_a, vote.history_b):
        return Shaped([], Skip.EMPTY)
    labels = {"a": (True, False), "b": (False, True), "both_bad": (False, False)}[vote.outcome]
    common = _common(vote, judges)
    rows = [
        {
            "prompt": messages(history[:-1]),
            "completion": messages(history[-1:]),
            "label": label,
            "model": model,
            "source": "battle",
            "id": vote.battle_id,
            **{k: v for k, v in common.items() if k != "battle_id"},
        }
        for history, model, label in zip(
            (vote.history_a, vote.history_b), (vote.model_a, vote.model_b), labels, strict=True
        )
    ]
    return Shaped(rows)


def kto_feedback(rated: RatedAnswer, judges: Judges) -> Shaped:
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
        "judge": judges(rated.session_id),
        "voted_at": rated.rated_at.isoformat(),
    }
    return Shaped([row])


def lmsys(vote: JudgedRound, judges: Judges) -> Shaped:
    """A Chatbot Arena battle record, exactly FastChat's schema (one per judged round)."""
    row = {
        "question_id": uuid.uuid5(_QUESTION_NAMESPACE, f"{vote.battle_id}/{vote.turn}").hex,
        "model_a": vote.model_a,
        "model_b": vote.model_b,
        "winner": LMSYS_WINNER[vote.outcome],
        "judge": judges(vote.session_id),
        "conversation_a": messages(vote.history_a),
        "conversation_b": messages(vote.history_b),
        "turn": vote.turn + 1,
        "anony": vote.anonymous,
        "language": vote.language or "unknown",
        "tstamp": vote.voted_at.timestamp(),
    }
    return Shaped([row])


def raw(record: RawRecord, judges: Judges) -> Shaped:
    """Everything stored about a battle or chat, voter ids anonymised, IP hashes left out."""
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
        "conversations": {
            side: [
                {
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
                    "created_at": t.created_at.isoformat(),
                }
                for t in turns
            ]
            for side, turns in record.conversations.items()
        },
        "votes": [
            {
                "turn": v.turn + 1,
                "outcome": v.outcome,
                "anonymous": v.anonymous,
                "identity_leak": v.identity_leak,
                "language": v.language,
                "judge": judges(v.session_id),
                "created_at": v.created_at.isoformat(),
            }
            for v in record.votes
        ],
        "feedback": [
            {
                "turn": fb.turn + 1,
                "rating": fb.rating,
                "tags": fb.tags,
                "comment": fb.comment,
                "judge": judges(fb.session_id),
                "created_at": fb.created_at.isoformat(),
            }
            for fb in record.feedback
        ],
    }
    return Shaped([row])


def dedup_key(fields: tuple[str, ...], row: Mapping[str, Any]) -> tuple[Any, ...]:
    """The content that makes two rows the same training example."""
    return tuple(row[name] for name in fields)
