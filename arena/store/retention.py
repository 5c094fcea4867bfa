"""Data-lifecycle statements: closing battles their process left open, and pruning old voter data.

Functions here take an open Session from the repository (the only code that opens one) and plain values.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Select, String, cast, delete, func, literal, or_, select, update
from sqlalchemy.orm import Session

from arena.store.schema import (
    BattleRow,
    ConversationRow,
    FeedbackRow,
    JudgementRow,
    MessageRow,
    VoteCountRow,
    VoteRow,
    VoteTotalRow,
)

PRUNED = "pruned"  # the session id left on anonymised rows
PruneAction = Literal["delete", "anonymise"]


@dataclass(frozen=True)
class PruneReport:
    """What a prune changed (or, in a dry run, would change)."""

    action: str
    cutoff: datetime
    battles: int = 0
    votes: int = 0
    conversations: int = 0
    messages: int = 0
    feedback: int = 0
    comments: int = 0
    dry_run: bool = False


def close_open_battles(s: Session, *, id_prefix: str | None, idle_before: datetime | None, now: datetime) -> int:
    """Mark `incomplete` the open battles whose id starts with `id_prefix` or with no activity since `idle_before`."""
    conditions: list[Any] = []
    if id_prefix:
        conditions.append(BattleRow.id.startswith(id_prefix, autoescape=True))
    if idle_before is not None:
        last_message = (
            select(func.max(MessageRow.created_at))
            .join(ConversationRow, MessageRow.conversation_id == ConversationRow.id)
            .where(ConversationRow.battle_id == BattleRow.id)
            .scalar_subquery()
        )
        conditions.append(
            (BattleRow.started_at < idle_before)
            & or_(last_message.is_(None), last_message < idle_before)  # a round stored lately means it is alive
        )
    if not conditions:
        return 0
    result = s.execute(
        update(BattleRow)
        .where(BattleRow.status == "open", or_(*conditions))
        .values(status="incomplete", finished_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def prune(s: Session, *, cutoff: datetime, action: PruneAction) -> PruneReport:
    """Delete or anonymise voter data of battles started, and chats begun, before `cutoff`."""
    old_battles = select(BattleRow.id).where(BattleRow.started_at < cutoff)
    old_convs = select(ConversationRow.id).where(
        or_(ConversationRow.battle_id.in_(old_battles), ConversationRow.created_at < cutoff)
    )
    if action == "delete":
        return _delete(s, cutoff, old_battles, old_convs)
    return _anonymise(s, cutoff, old_battles, old_convs)


def _count(s: Session, query: Select[Any]) -> int:
    return int(s.scalar(select(func.count()).select_from(query.subquery())) or 0)


def _anonymise(s: Session, cutoff: datetime, old_battles: Select[Any], old_convs: Select[Any]) -> PruneReport:
    """Session ids become "pruned", IP hashes and feedback comments go; votes, counts and messages stay."""
    identified = or_(BattleRow.ip_hash.is_not(None), BattleRow.session_id != PRUNED)
    battles = s.execute(
        update(BattleRow).where(BattleRow.started_at < cutoff, identified).values(session_id=PRUNED, ip_hash=None)
    )
    votes = s.execute(
        update(VoteRow)
        .where(VoteRow.battle_id.in_(old_battles), or_(VoteRow.ip_hash.is_not(None), VoteRow.session_id != PRUNED))
        .values(session_id=PRUNED, ip_hash=None)
    )
    convs = s.execute(
        update(ConversationRow)
        .where(
            ConversationRow.id.in_(old_convs),
            or_(ConversationRow.ip_hash.is_not(None), ConversationRow.session_id != PRUNED),
        )
        .values(session_id=PRUNED, ip_hash=None)
    )
    old_feedback = or_(
        FeedbackRow.created_at < cutoff,
        FeedbackRow.message_id.in_(select(MessageRow.id).where(MessageRow.conversation_id.in_(old_convs))),
    )
    comments = _count(s, select(FeedbackRow.id).where(old_feedback, FeedbackRow.comment.is_not(None)))
    # (message, session) is unique: each anonymised feedback row keeps a distinct session id of its own
    feedback = s.execute(
        update(FeedbackRow)
        .where(old_feedback, or_(FeedbackRow.ip_hash.is_not(None), ~FeedbackRow.session_id.startswith(PRUNED)))
        .values(session_id=literal(f"{PRUNED}-") + cast(FeedbackRow.id, String), ip_hash=None, comment=None)
    )
    # in PruneReport's field order: battles, votes, conversations, messages (kept), feedback, comments
    return PruneReport("anonymise", cutoff, _rows(battles), _rows(votes), _rows(convs), 0, _rows(feedback), comments)


def _delete(s: Session, cutoff: datetime, old_battles: Select[Any], old_convs: Select[Any]) -> PruneReport:
    """Delete old battles and chats with everything in them, taking their votes out of the counts tables too."""
    _uncount(s, old_battles)
    old_messages = select(MessageRow.id).where(MessageRow.conversation_id.in_(old_convs))
    feedback = s.execute(
        delete(FeedbackRow).where(or_(FeedbackRow.message_id.in_(old_messages), FeedbackRow.created_at < cutoff))
    )
    votes = s.execute(delete(VoteRow).where(VoteRow.battle_id.in_(old_battles)))
    s.execute(delete(JudgementRow).where(JudgementRow.battle_id.in_(old_battles)))  # the judges' raw readings
    messages = s.execute(delete(MessageRow).where(MessageRow.conversation_id.in_(old_convs)))
    convs = s.execute(delete(ConversationRow).where(ConversationRow.id.in_(old_convs)))
    battles = s.execute(delete(BattleRow).where(BattleRow.started_at < cutoff))
    # in PruneReport's field order: battles, votes, conversations, messages, feedback
    return PruneReport("delete", cutoff, _rows(battles), _rows(votes), _rows(convs), _rows(messages), _rows(feedback))


def _uncount(s: Session, old_battles: Select[Any]) -> None:
    """Subtract the doomed votes from vote_counts and vote_totals, so both still equal a recount of the votes."""
    rows = s.execute(
        select(
            BattleRow.model_a,
            BattleRow.model_b,
            VoteRow.outcome,
            VoteRow.anonymous,
            VoteRow.identity_leak,
            BattleRow.mode,
            VoteRow.language,
            VoteRow.categories,
            VoteRow.voter,
            VoteRow.created_at,
        )
        .join(BattleRow, VoteRow.battle_id == BattleRow.id)
        .where(VoteRow.battle_id.in_(old_battles))
    )
    daily: Counter[tuple[Any, ...]] = Counter()
    for a, b, outcome, anonymous, leak, mode, language, categories, voter, created in rows:
        cell = (a, b, outcome, anonymous, leak, mode, language or "unknown", categories or 0, voter)
        daily[(*cell, _utc_day(created))] += 1
    totals: Counter[tuple[Any, ...]] = Counter()
    for key, n in daily.items():
        totals[key[:-1]] += n
    for table, cells in ((VoteCountRow, daily), (VoteTotalRow, totals)):
        t: Any = table
        columns = [t.model_a, t.model_b, t.outcome, t.anonymous, t.identity_leak, t.mode, t.language, t.categories]
        columns.append(t.voter)
        if table is VoteCountRow:
            columns.append(VoteCountRow.day)
        for key, n in cells.items():
            match = [column == value for column, value in zip(columns, key, strict=True)]
            s.execute(update(table).where(*match).values(count=t.count - n))
        s.execute(delete(table).where(t.count <= 0))


def _utc_day(moment: datetime) -> str:
    """The UTC day a vote was counted under (SQLite hands back naive datetimes, written in UTC)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).date().isoformat()


def _rows(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
