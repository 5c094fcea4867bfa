"""The repository: every read and write of Corral's data goes through here, one transaction per call."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, case, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from arena.domain import BattleMode, Outcome, Reply, ReplyStatus, Side, VoteFilter, Voter, conversation_id
from arena.store import retention
from arena.store.errors import DuplicateFeedback, DuplicateVote, UnknownBattle
from arena.store.retention import PruneAction, PruneReport
from arena.store.schema import BattleRow, ConversationRow, FeedbackRow, MessageRow, VoteCountRow, VoteRow, VoteTotalRow

ANSWERED = ("ok", "stopped")  # assistant message statuses that make a round votable


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

    @classmethod
    def of(cls, row: VoteRow) -> StoredVote:
        """The vote a stored row holds."""
        return cls(
            battle_id=row.battle_id,
            turn_index=row.turn_index,
            outcome=Outcome(row.outcome),
            anonymous=row.anonymous,
            session_id=row.session_id,
            ip_hash=row.ip_hash,
            identity_leak=row.identity_leak,
            language=row.language,
        )


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

    @property
    def engine(self) -> Engine:
        """The engine every call runs on (audits and maintenance read it directly)."""
        return self._engine

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
                        "id": conversation_id(battle_id, side),
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
            convs = [conversation_id(battle_id, side) for side in Side]
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
                sides = {side.value: conversation_id(battle_id, side) for side in Side}
                stored = conn.execute(_ANSWERS_OF_ROUND, {**sides, "turn": turn_index}).scalar()
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
        query = select(VoteRow).where(VoteRow.battle_id == battle_id, VoteRow.turn_index == turn_index)
        with self._tx() as s:
            row = s.scalars(query).first()
            return None if row is None else StoredVote.of(row)

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

    def pair_outcomes(self, f: VoteFilter = VoteFilter()) -> list[tuple[str, str, Outcome, int]]:
        """The votes `f` keeps, aggregated to (model_a, model_b, outcome, count): what ratings are computed from.

        Read from the vote_counts table (kept in each vote's transaction), so the cost grows with the number of
        models, languages and days, not of votes. The counts do not keep the judged round's depth: a filter with
        `min_turns` above 1 is refused.
        """
        if f.min_turns > 1:
            raise ValueError("vote counts do not keep the round a vote judged: min_turns needs the votes themselves")
        dated = f.since is not None or f.until is not None
        c: Any = VoteCountRow if dated else VoteTotalRow  # daily cells only when a date range asks for them
        query = select(c.model_a, c.model_b, c.outcome, func.sum(c.count)).group_by(c.model_a, c.model_b, c.outcome)
        if not f.include_named:
            query = query.where(c.anonymous.is_(True))
        if not f.include_leaks:
            query = query.where(c.identity_leak.is_(False))
        if not f.include_self_play:
            query = query.where(c.mode != BattleMode.SELF_PLAY.value)
        if f.languages is not None:
            query = query.where(c.language.in_(list(f.languages)))
        if f.since is not None:
            query = query.where(VoteCountRow.day >= f.since.isoformat())
        if f.until is not None:
            query = query.where(VoteCountRow.day < f.until.isoformat())
        if f.models is not None:
            query = query.where(c.model_a.in_(list(f.models)), c.model_b.in_(list(f.models)))
        with self._tx() as s:
            return [(a, b, Outcome(o), int(n)) for a, b, o, n in s.execute(query)]

    def languages(self) -> list[str]:
        """Languages that have counted votes, most voted first."""
        c = VoteTotalRow
        query = select(c.language).group_by(c.language).order_by(func.sum(c.count).desc())
        with self._tx() as s:
            return [lang for lang in s.scalars(query) if lang != "unknown"]

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
