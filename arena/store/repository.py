"""The repository: every read and write of Corral's data goes through here, one transaction per call."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, case, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from arena.domain import BattleMode, Outcome, Reply, ReplyStatus, Side, Voter
from arena.store import retention
from arena.store.retention import PruneAction, PruneReport
from arena.store.schema import (
    BattleRow,
    ConversationRow,
    FeedbackRow,
    MessageRow,
    VoteCountRow,
    VoteRow,
    VoteTotalRow,
)

ANSWERED = ("ok", "stopped")  # assistant message statuses that make a round votable


class StoreError(Exception):
    """A write that the data's rules refuse."""


class DuplicateVote(StoreError):
    """This round of this battle already has a vote."""


class UnknownBattle(StoreError):
    """No battle with that id (or it may not be voted on)."""


class DuplicateFeedback(StoreError):
    """This session already rated this answer."""


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
class StoredVote:
    """A vote as stored."""

    battle_id: str
    turn_index: int
    outcome: Outcome
    anonymous: bool
    session_id: str
    ip_hash: str | None
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


def utcnow() -> datetime:
    """The current time in UTC (the default clock)."""
    return datetime.now(UTC)


class Repository:
    """All database access; takes plain values, returns dataclasses, never leaks a Session."""

    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._clock = clock
        # SQLite takes one writer at a time: queueing writers here is cheaper than SQLite's sleeping busy handler
        self._write_lock = threading.Lock() if engine.dialect.name == "sqlite" else None

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A write transaction on a plain connection (the hot paths: battles, rounds, votes)."""
        if self._write_lock is None:
            with self._engine.begin() as conn:
                yield conn
            return
        with self._write_lock, self._engine.begin() as conn:
            yield conn

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    # --- battles -------------------------------------------------------------------------------------

    def create_battle(
        self,
        *,
        battle_id: str,
        models: Mapping[Side, str],
        voter: Voter,
        mode: BattleMode = BattleMode.ANONYMOUS,
        language: str | None = None,
    ) -> None:
        """Store a new battle and its two (still empty) conversations."""
        now = self._clock()
        with self._write() as conn:
            conn.execute(
                _INSERT_BATTLE,
                {
                    "id": battle_id,
                    "model_a": models[Side.A],
                    "model_b": models[Side.B],
                    "anonymous": mode is not BattleMode.NAMED,
                    "mode": mode.value,
                    "language": language,
                    "status": "open",
                    "session_id": voter.session_id,
                    "ip_hash": voter.ip_hash,
                    "started_at": now,
                    "identity_leak": False,
                },
            )
            conn.execute(
                _INSERT_CONVERSATION,
                [
                    {
                        "id": _conversation_id(battle_id, side),
                        "kind": "battle",
                        "battle_id": battle_id,
                        "side": side.value,
                        "model": models[side],
                        "session_id": voter.session_id,
                        "ip_hash": voter.ip_hash,
                        "created_at": now,
                    }
                    for side in Side
                ],
            )

    def record_battle_turn(
        self,
        *,
        battle_id: str,
        turn_index: int,
        user_text: str,
        replies: Mapping[Side, Reply],
        params: Mapping[Side, dict[str, Any]],
        language: str | None = None,
        identity_leak: bool = False,
        regenerated: bool = False,
    ) -> None:
        """Store one round (the question and both answers) in one transaction; an error closes the battle.

        A regenerated round keeps the replaced answers, marked superseded, and stores the new ones beside them.
        """
        now = self._clock()
        errored = any(r.status is ReplyStatus.ERROR for r in replies.values())
        with self._write() as conn:
            battle = conn.execute(_BATTLE_FOR_WRITE, {"id": battle_id}).first()
            if battle is None:
                raise UnknownBattle(battle_id)
            convs = [_conversation_id(battle_id, side) for side in Side]
            if regenerated:
                conn.execute(
                    update(MessageRow)
                    .where(
                        MessageRow.conversation_id.in_(convs),
                        MessageRow.turn_index == turn_index,
                        MessageRow.role == "assistant",
                        MessageRow.status != "superseded",
                    )
                    .values(status="superseded")
                )
            rows = []
            for side, conv in zip(Side, convs, strict=True):
                model = battle.model_a if side is Side.A else battle.model_b
                if not regenerated:
                    rows.append(_user_values(conv, turn_index, user_text, now, language))
                rows.append(_assistant_values(conv, turn_index, replies[side], model, params[side], now))
            conn.execute(_INSERT_MESSAGE, rows)
            # in SQL, not from the row read above: a concurrent close (idle battles) must not be undone or lost
            values: dict[str, Any] = {
                "status": "errored"
                if errored
                else case((BattleRow.status == "incomplete", "open"), else_=BattleRow.status)
            }
            if errored:
                values["finished_at"] = now
            if identity_leak:
                values["identity_leak"] = True
            conn.execute(update(BattleRow).where(BattleRow.id == battle_id).values(**values))

    def record_vote(
        self,
        *,
        battle_id: str,
        turn_index: int,
        outcome: Outcome,
        anonymous: bool,
        voter: Voter,
        identity_leak: bool = False,
        language: str | None = None,
    ) -> None:
        """Store a vote on one stored, error-free round; a second vote on the same round raises DuplicateVote."""
        now = self._clock()
        try:
            with self._write() as conn:
                battle = conn.execute(_BATTLE_FOR_WRITE, {"id": battle_id}).first()
                if battle is None or battle.status == "errored" or battle.session_id != voter.session_id:
                    raise UnknownBattle(battle_id)
                stored = conn.execute(
                    _ANSWERS_OF_ROUND, {"a": f"{battle_id}-a", "b": f"{battle_id}-b", "turn": turn_index}
                ).scalar()
                if stored != 2:
                    raise UnknownBattle(f"{battle_id} round {turn_index} has no complete answers")
                conn.execute(  # a duplicate vote fails here, before anything is counted
                    _INSERT_VOTE,
                    {
                        "battle_id": battle_id,
                        "turn_index": turn_index,
                        "outcome": outcome.value,
                        "anonymous": anonymous,
                        "session_id": voter.session_id,
                        "ip_hash": voter.ip_hash,
                        "created_at": now,
                        "identity_leak": identity_leak,
                        "language": language,
                    },
                )
                conn.execute(_VOTED, {"battle": battle_id, "now": now})
                _count_vote(conn, battle, outcome.value, anonymous, identity_leak, language, now)
        except IntegrityError as exc:
            raise DuplicateVote(f"{battle_id} round {turn_index}") from exc

    def round_vote(self, battle_id: str, turn_index: int) -> StoredVote | None:
        """The vote stored on one round of a battle, or None."""
        votes = [v for v in self.votes(battle_id=battle_id) if v.turn_index == turn_index]
        return votes[0] if votes else None

    def close_open_battles(self, *, id_prefix: str | None = None, idle_before: datetime | None = None) -> int:
        """Mark `incomplete` the open battles of a dead process (id prefix) or idle since `idle_before`; how many."""
        with self._tx() as s:
            return retention.close_open_battles(s, id_prefix=id_prefix, idle_before=idle_before, now=self._clock())

    def prune(self, *, cutoff: datetime, action: PruneAction, dry_run: bool = False) -> PruneReport:
        """Delete or anonymise voter data older than `cutoff` in one transaction (rolled back for a dry run)."""
        with self._sessions() as s:
            report = retention.prune(s, cutoff=cutoff, action=action)
            if dry_run:
                s.rollback()
                return replace(report, dry_run=True)
            s.commit()
            return report

    def battle(self, battle_id: str) -> StoredBattle | None:
        """A stored battle with both conversations, or None."""
        with self._tx() as s:
            row = s.get(BattleRow, battle_id)
            if row is None:
                return None
            convs = {side: self._messages(s, _conversation_id(battle_id, side)) for side in Side}
            return StoredBattle(
                id=row.id,
                models={Side.A: row.model_a, Side.B: row.model_b},
                anonymous=row.anonymous,
                status=row.status,
                conversations=convs,
                mode=BattleMode(row.mode),
                identity_leak=row.identity_leak,
                language=row.language,
            )

    def votes(self, *, battle_id: str | None = None) -> list[StoredVote]:
        """Stored votes in the order they were cast, optionally for one battle."""
        query = select(VoteRow).order_by(VoteRow.id)
        if battle_id is not None:
            query = query.where(VoteRow.battle_id == battle_id)
        with self._tx() as s:
            return [
                StoredVote(
                    battle_id=v.battle_id,
                    turn_index=v.turn_index,
                    outcome=Outcome(v.outcome),
                    anonymous=v.anonymous,
                    session_id=v.session_id,
                    ip_hash=v.ip_hash,
                    identity_leak=v.identity_leak,
                    language=v.language,
                )
                for v in s.scalars(query)
            ]

    def pair_outcomes(
        self,
        *,
        anonymous_only: bool = True,
        include_leaks: bool = False,
        include_self_play: bool = False,
        language: str | None = None,
        since: date | None = None,
        until: date | None = None,
        models: Collection[str] | None = None,
    ) -> list[tuple[str, str, Outcome, int]]:
        """Votes aggregated to (model_a, model_b, outcome, count): what ratings are computed from.

        Read from the vote_counts table (kept in each vote's transaction), so the cost grows with the number of
        models, languages and days, not of votes. By default only anonymous votes with no identity leak, outside
        self-play battles, count. Date ranges are whole UTC days: `since` inclusive, `until` exclusive.
        """
        dated = since is not None or until is not None
        c: Any = VoteCountRow if dated else VoteTotalRow  # daily cells only when a date range asks for them
        query = select(c.model_a, c.model_b, c.outcome, func.sum(c.count)).group_by(c.model_a, c.model_b, c.outcome)
        if anonymous_only:
            query = query.where(c.anonymous.is_(True))
        if not include_leaks:
            query = query.where(c.identity_leak.is_(False))
        if not include_self_play:
            query = query.where(c.mode != BattleMode.SELF_PLAY.value)
        if language is not None:
            query = query.where(c.language == language)
        if since is not None:
            query = query.where(VoteCountRow.day >= since.isoformat())
        if until is not None:
            query = query.where(VoteCountRow.day < until.isoformat())
        if models is not None:
            query = query.where(c.model_a.in_(list(models)), c.model_b.in_(list(models)))
        with self._tx() as s:
            return [(a, b, Outcome(o), int(n)) for a, b, o, n in s.execute(query)]

    def languages(self) -> list[str]:
        """Languages that have counted votes, most voted first."""
        c = VoteTotalRow
        query = select(c.language).group_by(c.language).order_by(func.sum(c.count).desc())
        with self._tx() as s:
            return [lang for lang in s.scalars(query) if lang != "unknown"]

    def pair_outcomes_from_votes(
        self,
        *,
        anonymous_only: bool = True,
        include_leaks: bool = False,
        include_self_play: bool = False,
        language: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        models: Collection[str] | None = None,
    ) -> list[tuple[str, str, Outcome, int]]:
        """The same aggregate as pair_outcomes, from every vote row (the reference the counts must match; slow)."""
        query = (
            select(BattleRow.model_a, BattleRow.model_b, VoteRow.outcome, func.count(VoteRow.id))
            .join(BattleRow, VoteRow.battle_id == BattleRow.id)
            .group_by(BattleRow.model_a, BattleRow.model_b, VoteRow.outcome)
        )
        if anonymous_only:
            query = query.where(VoteRow.anonymous.is_(True))
        if not include_leaks:
            query = query.where(VoteRow.identity_leak.is_(False))
        if not include_self_play:
            query = query.where(BattleRow.mode != BattleMode.SELF_PLAY.value)
        if language is not None:
            query = query.where(VoteRow.language == language)
        if since is not None:
            query = query.where(VoteRow.created_at >= since)
        if until is not None:
            query = query.where(VoteRow.created_at < until)
        if models is not None:
            query = query.where(BattleRow.model_a.in_(list(models)), BattleRow.model_b.in_(list(models)))
        with self._tx() as s:
            return [(a, b, Outcome(o), int(n)) for a, b, o, n in s.execute(query)]

    # --- single-model chat ---------------------------------------------------------------------------

    def create_chat(self, *, conversation_id: str, model: str, voter: Voter) -> None:
        """Store a new single-model conversation."""
        with self._tx() as s:
            s.add(
                ConversationRow(
                    id=conversation_id,
                    kind="chat",
                    model=model,
                    session_id=voter.session_id,
                    ip_hash=voter.ip_hash,
                    created_at=self._clock(),
                )
            )

    def record_chat_turn(
        self,
        *,
        conversation_id: str,
        turn_index: int,
        user_text: str,
        reply: Reply,
        model: str,
        params: dict[str, Any],
        language: str | None = None,
        regenerated: bool = False,
    ) -> int:
        """Store one question and its answer (or a regenerated answer) in a chat; returns the answer's id."""
        now = self._clock()
        with self._tx() as s:
            if regenerated:
                s.execute(
                    update(MessageRow)
                    .where(
                        MessageRow.conversation_id == conversation_id,
                        MessageRow.turn_index == turn_index,
                        MessageRow.role == "assistant",
                    )
                    .values(status="superseded")
                )
            else:
                s.add(_user_message(conversation_id, turn_index, user_text, now, language))
            answer = _assistant_message(conversation_id, turn_index, reply, model, params, now)
            s.add(answer)
            s.flush()
            return answer.id

    def record_feedback(
        self, *, message_id: int, rating: str, tags: list[str], comment: str | None, voter: Voter
    ) -> None:
        """Store a thumbs up/down on a chat answer of this voter's session (once per answer and session)."""
        try:
            with self._tx() as s:
                message = s.get(MessageRow, message_id)
                conv = s.get(ConversationRow, message.conversation_id) if message is not None else None
                if message is None or conv is None or conv.session_id != voter.session_id:
                    raise UnknownBattle(f"message {message_id}")
                s.add(
                    FeedbackRow(
                        message_id=message_id,
                        rating=rating,
                        tags=tags,
                        comment=comment,
                        session_id=voter.session_id,
                        ip_hash=voter.ip_hash,
                        created_at=self._clock(),
                    )
                )
        except IntegrityError as exc:
            raise DuplicateFeedback(f"message {message_id}") from exc

    def update_feedback(
        self, *, message_id: int, voter: Voter, rating: str, tags: list[str] | None = None, comment: str | None = None
    ) -> bool:
        """Change this session's rating of a chat answer in place; with `tags`, set its reasons and comment too
        (`tags=None` keeps both). False when this session has not rated that answer yet."""
        values: dict[str, Any] = {"rating": rating}
        if tags is not None:
            values.update(tags=tags, comment=comment)
        with self._tx() as s:
            result = s.execute(
                update(FeedbackRow)
                .where(FeedbackRow.message_id == message_id, FeedbackRow.session_id == voter.session_id)
                .values(**values)
            )
            return bool(getattr(result, "rowcount", 0))

    def feedback(self) -> list[StoredFeedback]:
        """All chat feedback in the order it was given."""
        with self._tx() as s:
            return [
                StoredFeedback(f.message_id, f.rating, list(f.tags or []), f.comment, f.session_id)
                for f in s.scalars(select(FeedbackRow).order_by(FeedbackRow.id))
            ]

    def conversation(self, conversation_id: str) -> list[StoredMessage]:
        """The stored messages of a conversation in order."""
        with self._tx() as s:
            return self._messages(s, conversation_id)

    @staticmethod
    def _messages(s: Session, conversation_id: str) -> list[StoredMessage]:
        rows = s.scalars(
            select(MessageRow).where(MessageRow.conversation_id == conversation_id).order_by(MessageRow.id)
        )
        return [
            StoredMessage(
                turn_index=m.turn_index,
                role=m.role,
                content=m.content,
                model=m.model,
                status=m.status,
                ttft_ms=m.ttft_ms,
                total_ms=m.total_ms,
                token_count=m.token_count,
                generation_params=m.generation_params,
                language=m.language,
            )
            for m in rows
        ]


def _count_vote(
    conn: Connection, battle: Any, outcome: str, anonymous: bool, leak: bool, language: str | None, now: datetime
) -> None:
    """Add one to the vote's cell of vote_counts (an upsert, so concurrent writers never lose a count)."""
    values = {
        "model_a": battle.model_a,
        "model_b": battle.model_b,
        "outcome": outcome,
        "anonymous": anonymous,
        "identity_leak": leak,
        "mode": battle.mode,
        "language": language or "unknown",
        "day": now.astimezone(UTC).date().isoformat(),
        "count": 1,
    }
    daily, total = _upserts(conn.dialect.name)
    conn.execute(daily, values)
    conn.execute(total, {k: v for k, v in values.items() if k != "day"})


@functools.cache
def _upserts(dialect: str) -> tuple[Any, Any]:
    """The two count upserts for a dialect, built once (values come as parameters)."""
    insert_: Any = postgresql_insert if dialect == "postgresql" else sqlite_insert
    out = []
    for table in (VoteCountRow, VoteTotalRow):
        keys = [c.key for c in table.__table__.c if c.primary_key]
        out.append(insert_(table).on_conflict_do_update(index_elements=keys, set_={"count": table.count + 1}))
    return out[0], out[1]


_MESSAGE_COLUMNS = [c.key for c in MessageRow.__table__.columns if c.key != "id"]
_INSERT_BATTLE = insert(BattleRow)
_INSERT_CONVERSATION = insert(ConversationRow)
_INSERT_MESSAGE = insert(MessageRow)
_INSERT_VOTE = insert(VoteRow)
_BATTLE_FOR_WRITE = select(
    BattleRow.model_a,
    BattleRow.model_b,
    BattleRow.mode,
    BattleRow.status,
    BattleRow.session_id,
    BattleRow.finished_at,
    BattleRow.identity_leak,
).where(BattleRow.id == bindparam("id"))
_ANSWERS_OF_ROUND = select(func.count(MessageRow.id)).where(
    MessageRow.conversation_id.in_([bindparam("a"), bindparam("b")]),
    MessageRow.turn_index == bindparam("turn"),
    MessageRow.role == "assistant",
    MessageRow.status.in_(ANSWERED),
)
_VOTED = (
    update(BattleRow).where(BattleRow.id == bindparam("battle")).values(status="voted", finished_at=bindparam("now"))
)


def _message_values(
    conversation_id: str, turn_index: int, role: str, content: str, now: datetime, **columns: Any
) -> dict[str, Any]:
    """A message as the full set of column values an executemany insert needs (the rest NULL, status ok)."""
    values = dict.fromkeys(_MESSAGE_COLUMNS)
    values.update(
        conversation_id=conversation_id, turn_index=turn_index, role=role, content=content, status="ok", created_at=now
    )
    values.update(columns)
    return values


def _conversation_id(battle_id: str, side: Side) -> str:
    return f"{battle_id}-{side.value}"


def _user_values(
    conversation_id: str, turn_index: int, text: str, now: datetime, language: str | None = None
) -> dict[str, Any]:
    return _message_values(conversation_id, turn_index, "user", text, now, language=language)


def _assistant_values(
    conversation_id: str, turn_index: int, reply: Reply, model: str, params: dict[str, Any], now: datetime
) -> dict[str, Any]:
    return _message_values(
        conversation_id,
        turn_index,
        "assistant",
        reply.text,
        now,
        model=model,
        status=reply.status.value if reply.status is not ReplyStatus.STREAMING else "error",
        error=reply.error,
        ttft_ms=reply.ttft_ms,
        total_ms=reply.total_ms,
        token_count=reply.tokens,
        generation_params=params,
    )


def _user_message(
    conversation_id: str, turn_index: int, text: str, now: datetime, language: str | None = None
) -> MessageRow:
    return MessageRow(**_user_values(conversation_id, turn_index, text, now, language))


def _assistant_message(
    conversation_id: str, turn_index: int, reply: Reply, model: str, params: dict[str, Any], now: datetime
) -> MessageRow:
    return MessageRow(**_assistant_values(conversation_id, turn_index, reply, model, params, now))
