"""The tables. Every change to them comes with an Alembic migration under migrations/versions/."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Declarative base of Corral's tables."""


class BattleRow(Base):
    """Two models answering the same user, side by side."""

    __tablename__ = "battles"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model_a: Mapped[str] = mapped_column(String(80))
    model_b: Mapped[str] = mapped_column(String(80))
    anonymous: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(16))  # open | voted | errored | incomplete
    session_id: Mapped[str] = mapped_column(String(64))
    ip_hash: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    mode: Mapped[str] = mapped_column(String(16), default="anonymous", index=True)  # anonymous | named | self_play
    identity_leak: Mapped[bool] = mapped_column(Boolean, default=False)
    language: Mapped[str | None] = mapped_column(String(32))


class ConversationRow(Base):
    """One model's side of a battle, or a single-model chat."""

    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("battle_id", "side"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # battle | chat
    battle_id: Mapped[str | None] = mapped_column(ForeignKey("battles.id"), index=True)
    side: Mapped[str | None] = mapped_column(String(1))
    model: Mapped[str] = mapped_column(String(80))
    session_id: Mapped[str] = mapped_column(String(64))
    ip_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class MessageRow(Base):
    """A user or assistant message, with generation timings for assistant messages."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_conversation_turn", "conversation_id", "turn_index"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"))
    turn_index: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(16))  # ok | stopped | error | superseded
    error: Mapped[str | None] = mapped_column(Text)
    ttft_ms: Mapped[float | None] = mapped_column(Float)
    total_ms: Mapped[float | None] = mapped_column(Float)
    token_count: Mapped[int | None] = mapped_column(Integer)
    generation_params: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    language: Mapped[str | None] = mapped_column(String(32))
    # a battle answer's style (arena.style), counted when it is stored: estimated tokens (one count for every
    # model's tokenizer), markdown headers, list items and bold spans outside code; NULL for questions and chats
    style_tokens: Mapped[int | None] = mapped_column(Integer)
    style_headers: Mapped[int | None] = mapped_column(Integer)
    style_lists: Mapped[int | None] = mapped_column(Integer)
    style_bold: Mapped[int | None] = mapped_column(Integer)
    # a question's categories (arena.categories bit mask), taken when it is stored; NULL for answers
    categories: Mapped[int | None] = mapped_column(Integer)


class VoteRow(Base):
    """A voter's judgement of one round of a battle: one per (battle, round, voter), a person's or an AI judge's."""

    __tablename__ = "votes"
    __table_args__ = (UniqueConstraint("battle_id", "turn_index", "voter", name="uq_votes_battle_turn_voter"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    battle_id: Mapped[str] = mapped_column(ForeignKey("battles.id"))
    turn_index: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))  # a | b | tie | both_bad
    anonymous: Mapped[bool] = mapped_column(Boolean)
    session_id: Mapped[str] = mapped_column(String(64))
    ip_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    identity_leak: Mapped[bool] = mapped_column(Boolean, default=False)
    language: Mapped[str | None] = mapped_column(String(32))
    # each side's style up to the judged round (sums over its stored answers), taken when the vote is stored
    style_a_tokens: Mapped[int | None] = mapped_column(Integer)
    style_a_headers: Mapped[int | None] = mapped_column(Integer)
    style_a_lists: Mapped[int | None] = mapped_column(Integer)
    style_a_bold: Mapped[int | None] = mapped_column(Integer)
    style_b_tokens: Mapped[int | None] = mapped_column(Integer)
    style_b_headers: Mapped[int | None] = mapped_column(Integer)
    style_b_lists: Mapped[int | None] = mapped_column(Integer)
    style_b_bold: Mapped[int | None] = mapped_column(Integer)
    # the judged round's question's categories (arena.categories bit mask), taken when the vote is stored
    categories: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    voter: Mapped[str] = mapped_column(String(80), default="human", server_default="human")  # or "judge:NAME"


class _CountCell:
    """The key of a counts cell: a pair, an outcome and the leaderboard's filters."""

    model_a: Mapped[str] = mapped_column(String(80), primary_key=True)
    model_b: Mapped[str] = mapped_column(String(80), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(16), primary_key=True)
    anonymous: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    identity_leak: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    mode: Mapped[str] = mapped_column(String(16), primary_key=True)
    language: Mapped[str] = mapped_column(String(32), primary_key=True)  # "unknown" rather than NULL: keys compare
    categories: Mapped[int] = mapped_column(Integer, primary_key=True)  # the question's bit mask (arena.categories)
    voter: Mapped[str] = mapped_column(String(80), primary_key=True)  # "human" or "judge:NAME"


class VoteCountRow(_CountCell, Base):
    """Votes counted per pair, outcome, rating filters and UTC day; updated in each vote's transaction."""

    __tablename__ = "vote_counts"
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD, UTC
    count: Mapped[int] = mapped_column(Integer)


class VoteTotalRow(_CountCell, Base):
    """The same counts as vote_counts summed over all days: what an undated leaderboard reads."""

    __tablename__ = "vote_totals"
    count: Mapped[int] = mapped_column(Integer)


class JudgementRow(Base):
    """An AI judge's reading of one round: its raw answers (both orders with swap) and the verdict, including
    the inconsistent and unreadable ones, which are not votes."""

    __tablename__ = "judgements"
    __table_args__ = (UniqueConstraint("battle_id", "turn_index", "judge", name="uq_judgements_battle_turn_judge"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    battle_id: Mapped[str] = mapped_column(ForeignKey("battles.id"))
    turn_index: Mapped[int] = mapped_column(Integer)
    judge: Mapped[str] = mapped_column(String(80))
    verdict: Mapped[str] = mapped_column(String(16))  # arena.judging.Verdict
    first_verdict: Mapped[str] = mapped_column(String(16))
    second_verdict: Mapped[str | None] = mapped_column(String(16))  # with swap: read back in the original order
    first_text: Mapped[str] = mapped_column(Text)
    second_text: Mapped[str | None] = mapped_column(Text)
    judge_ms: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)  # why a reading has no text (backend failure, timeout)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class FeedbackRow(Base):
    """A thumbs up or down on one single-chat answer, with optional reason tags and comment."""

    __tablename__ = "chat_feedback"
    __table_args__ = (UniqueConstraint("message_id", "session_id", name="uq_feedback_message_session"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"))
    rating: Mapped[str] = mapped_column(String(8))  # up | down
    tags: Mapped[list[str] | None] = mapped_column(JSON)
    comment: Mapped[str | None] = mapped_column(Text)
    session_id: Mapped[str] = mapped_column(String(64))
    ip_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
