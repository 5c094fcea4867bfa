"""Reads that only tests need: whole stored battles, every vote, every rating, and the slow reference aggregate."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime, time
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from arena.domain import BattleMode, Outcome, Side, VoteFilter, conversation_id
from arena.store.repository import Repository, StoredVote
from arena.store.schema import BattleRow, FeedbackRow, MessageRow, VoteRow


@dataclass(frozen=True)
class StoredMessage:
    """A message as stored."""

    turn_index: int
    role: str
    content: str
    model: str | None
    status: str
    ttft_ms: float | None
    total_ms: float | None
    token_count: int | None
    generation_params: dict[str, Any] | None
    language: str | None = None


@dataclass(frozen=True)
class StoredBattle:
    """A battle as stored, with its two conversations."""

    id: str
    models: dict[Side, str]
    anonymous: bool
    status: str
    conversations: dict[Side, list[StoredMessage]]
    mode: BattleMode = BattleMode.ANONYMOUS
    identity_leak: bool = False
    language: str | None = None


@dataclass(frozen=True)
class StoredFeedback:
    """A thumbs up/down on a chat answer as stored."""

    message_id: int
    rating: str
    tags: list[str]
    comment: str | None
    session_id: str


class StoreReads:
    """Test-only reads of what the repository stored."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def battle(self, battle_id: str) -> StoredBattle | None:
        """A stored battle with both conversations, or None."""
        with Session(self._engine) as s:
            row = s.get(BattleRow, battle_id)
            if row is None:
                return None
            return StoredBattle(
                id=row.id,
                models={Side.A: row.model_a, Side.B: row.model_b},
                anonymous=row.anonymous,
                status=row.status,
                conversations={side: _messages(s, conversation_id(battle_id, side)) for side in Side},
                mode=BattleMode(row.mode),
                identity_leak=row.identity_leak,
                language=row.language,
            )

    def votes(self, *, battle_id: str | None = None) -> list[StoredVote]:
        """Stored votes in the order they were cast, optionally for one battle."""
        query = select(VoteRow).order_by(VoteRow.id)
        if battle_id is not None:
            query = query.where(VoteRow.battle_id == battle_id)
        with Session(self._engine) as s:
            return [StoredVote.of(v) for v in s.scalars(query)]

    def feedback(self) -> list[StoredFeedback]:
        """All chat feedback in the order it was given."""
        with Session(self._engine) as s:
            return [
                StoredFeedback(f.message_id, f.rating, list(f.tags or []), f.comment, f.session_id)
                for f in s.scalars(select(FeedbackRow).order_by(FeedbackRow.id))
            ]

    def conversation(self, conversation_id: str) -> list[StoredMessage]:
        """The stored messages of a conversation in order."""
        with Session(self._engine) as s:
            return _messages(s, conversation_id)

    def pair_outcomes_from_votes(self, f: VoteFilter = VoteFilter()) -> list[tuple[str, str, Outcome, int]]:
        """The aggregate `Repository.pair_outcomes` reads from vote counts, recomputed from every vote row."""
        query = (
            select(BattleRow.model_a, BattleRow.model_b, VoteRow.outcome, func.count(VoteRow.id))
            .join(BattleRow, VoteRow.battle_id == BattleRow.id)
            .group_by(BattleRow.model_a, BattleRow.model_b, VoteRow.outcome)
        )
        if not f.include_named:
            query = query.where(VoteRow.anonymous.is_(True))
        if not f.include_leaks:
            query = query.where(VoteRow.identity_leak.is_(False))
        if not f.include_self_play:
            query = query.where(BattleRow.mode != BattleMode.SELF_PLAY.value)
        if f.languages is not None:
            query = query.where(func.coalesce(VoteRow.language, "unknown").in_(list(f.languages)))
        if f.since is not None:
            query = query.where(VoteRow.created_at >= datetime.combine(f.since, time.min, tzinfo=UTC))
        if f.until is not None:
            query = query.where(VoteRow.created_at < datetime.combine(f.until, time.min, tzinfo=UTC))
        if f.models is not None:
            query = query.where(BattleRow.model_a.in_(list(f.models)), BattleRow.model_b.in_(list(f.models)))
        with Session(self._engine) as s:
            return [(a, b, Outcome(o), int(n)) for a, b, o, n in s.execute(query)]


def reads(repo: Repository) -> StoreReads:
    """Test-only reads on the repository's database."""
    return StoreReads(repo.engine)


def _messages(s: Session, conversation_id: str) -> list[StoredMessage]:
    rows = s.scalars(select(MessageRow).where(MessageRow.conversation_id == conversation_id).order_by(MessageRow.id))
    return [StoredMessage(**{f.name: getattr(m, f.name) for f in fields(StoredMessage)}) for m in rows]
