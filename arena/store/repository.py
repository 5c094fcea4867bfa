"""The repository: every read and write of Corral's data goes through here, one transaction per call."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, case, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from arena.agreement import Paired, Reading
from arena.categories import bit, categorise
from arena.domain import (
    HUMAN,
    JUDGE_PREFIX,
    BattleMode,
    Outcome,
    Reply,
    ReplyStatus,
    Side,
    VoteFilter,
    Voter,
    conversation_id,
    judge_voter,
)
from arena.judging import OUTCOMES, Judgement
from arena.store import judge_writes, retention
from arena.store.errors import DuplicateFeedback, DuplicateVote, UnknownBattle
from arena.store.hot_writes import STYLE_NAMES, Values, for_driver, hot_writes
from arena.store.retention import PruneAction, PruneReport
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
from arena.store.voters import voters_kept
from arena.style import StyleVotes, style_counts


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
        # battles, rounds and votes: the fewest statements the dialect allows (SQLite commits concurrent callers
        # together, one writer at a time; PostgreSQL runs each as one autocommitted statement)
        self._hot = hot_writes(engine.dialect.name)
        self._writer = self._hot.writer(engine)

    @property
    def engine(self) -> Engine:
        """The engine every call runs on (audits and maintenance read it directly)."""
        return self._engine

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
        self._hot_write(self._hot.create_battle, self._battle_values(battle_id, models, voter, mode, language))

    def _battle_values(
        self, battle_id: str, models: Mapping[Side, str], voter: Voter, mode: BattleMode, language: str | None
    ) -> Values:
        return {
            "battle_id": battle_id,
            "model_a": models[Side.A],
            "model_b": models[Side.B],
            "anonymous": mode is not BattleMode.NAMED,
            "mode": mode.value,
            "language": language,
            "session_id": voter.session_id,
            "ip_hash": voter.ip_hash,
            "now": self._clock(),
            **_conversations(battle_id),
        }

    def _hot_write(self, write: Callable[[Connection, Values], None], values: Values) -> None:
        """Run one hot write, its values converted for the driver here, in the caller's thread."""
        converted = for_driver(self._engine.dialect, values)
        self._writer.run(lambda conn: write(conn, converted))

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
        values = self._round_values(
            battle_id, turn_index, user_text, replies, params, language, identity_leak, regenerated
        )
        self._hot_write(self._hot.record_round, values)

    def _round_values(
        self,
        battle_id: str,
        turn_index: int,
        user_text: str,
        replies: Mapping[Side, Reply],
        params: Mapping[Side, dict[str, Any]],
        language: str | None,
        identity_leak: bool,
        regenerated: bool,
    ) -> Values:
        round_ = {
            "battle_id": battle_id,
            "turn_index": turn_index,
            "user_text": user_text,
            "language": language,
            "identity_leak": identity_leak,
            "regenerated": regenerated,
            "categories": None if regenerated else categorise(user_text, turn_index),  # the question is stored
            "errored": any(r.status is ReplyStatus.ERROR for r in replies.values()),
            "now": self._clock(),
            **_conversations(battle_id),
        }
        for side in Side:
            round_.update(_answer_values(side, replies[side], params[side]))
        return round_

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
        """Store a vote on one stored, error-free round; a second vote on the same round raises DuplicateVote.

        The vote, its battle's status and both count cells are written in the vote's own transaction (or
        savepoint, when SQLite commits several callers together), so concurrent writers never lose a count.
        """
        now = self._clock()
        vote = {
            "battle_id": battle_id,
            "turn_index": turn_index,
            "outcome": outcome.value,
            "anonymous": anonymous,
            "session_id": voter.session_id,
            "ip_hash": voter.ip_hash,
            "now": now,
            "identity_leak": identity_leak,
            "language": language,
            "cell_language": language or "unknown",  # counts keep "unknown" rather than NULL: keys compare
            "day": now.astimezone(UTC).date().isoformat(),
            **_conversations(battle_id),
        }
        try:
            self._hot_write(self._hot.record_vote, vote)
        except IntegrityError as exc:
            raise DuplicateVote(f"{battle_id} round {turn_index}") from exc

    def record_judgement(self, *, battle_id: str, turn_index: int, judgement: Judgement) -> None:
        """Store an AI judge's reading of a stored round and, when it is a verdict, the judge's vote ("judge:NAME")
        with its count cells, in one transaction; a second reading of the round by that judge raises
        DuplicateVote."""
        values, outcome = self._judgement_values(battle_id, turn_index, judgement)
        try:
            with self._engine.begin() as conn:
                judge_writes.record_judgement(conn, values, outcome)
        except IntegrityError as exc:
            raise DuplicateVote(f"{battle_id} round {turn_index} by judge {judgement.judge}") from exc

    def record_auto_battle(
        self,
        *,
        battle_id: str,
        models: Mapping[Side, str],
        voter: Voter,
        user_text: str,
        replies: Mapping[Side, Reply],
        params: Mapping[Side, dict[str, Any]],
        language: str | None,
        judgement: Judgement,
    ) -> None:
        """Store an automatic battle whole, in one transaction: the battle, its one round and the judge's reading
        (so an interrupted run leaves nothing half-written for a rerun to skip)."""
        battle = for_driver(
            self._engine.dialect, self._battle_values(battle_id, models, voter, BattleMode.AUTO, language)
        )
        round_ = self._round_values(battle_id, 0, user_text, replies, params, language, False, False)
        values, outcome = self._judgement_values(battle_id, 0, judgement)
        with self._engine.begin() as conn:
            self._hot.create_battle(conn, battle)
            self._hot.record_round(conn, for_driver(self._engine.dialect, round_))
            judge_writes.record_judgement(conn, values, outcome)

    def _judgement_values(self, battle_id: str, turn_index: int, judgement: Judgement) -> tuple[Values, str | None]:
        """A judgement as SQL parameters (times converted for the driver), and the vote it casts, if any."""
        now = self._clock()
        values = {
            "battle_id": battle_id,
            "turn_index": turn_index,
            "judge": judgement.judge,
            "verdict": judgement.verdict.value,
            "first_verdict": judgement.first.value,
            "second_verdict": None if judgement.second is None else judgement.second.value,
            "first_text": judgement.first_text,
            "second_text": judgement.second_text,
            "judge_ms": judgement.ms,
            "error": judgement.error,
            "now": now,
            "voter": judge_voter(judgement.judge),
            "day": now.astimezone(UTC).date().isoformat(),
            **_conversations(battle_id),
        }
        outcome = OUTCOMES.get(judgement.verdict)
        return for_driver(self._engine.dialect, values), None if outcome is None else outcome.value

    def existing_battles(self, battle_ids: Collection[str]) -> set[str]:
        """Which of these battle ids are stored (what an automatic run already did)."""
        found: set[str] = set()
        ids = list(battle_ids)
        with self._tx() as s:
            for start in range(0, len(ids), 500):
                found.update(s.scalars(select(BattleRow.id).where(BattleRow.id.in_(ids[start : start + 500]))))
        return found

    def asked_questions(self) -> list[tuple[str, str | None]]:
        """The distinct first questions people asked (battles and chats, not automatic battles), oldest first,
        with their detected language: what `autobattle --from-arena` reuses (never the answers)."""
        first = (
            select(MessageRow.content, func.min(MessageRow.language), func.min(MessageRow.id).label("first"))
            .join(ConversationRow, ConversationRow.id == MessageRow.conversation_id)
            .outerjoin(BattleRow, BattleRow.id == ConversationRow.battle_id)
            .where(
                MessageRow.role == "user",
                MessageRow.turn_index == 0,
                or_(ConversationRow.kind == "chat", ConversationRow.side == "a"),
                or_(BattleRow.mode.is_(None), BattleRow.mode != BattleMode.AUTO.value),
            )
            .group_by(MessageRow.content)
            .order_by("first")
        )
        with self._tx() as s:
            return [(str(content), language) for content, language, _ in s.execute(first)]

    def paired_verdicts(self, f: VoteFilter = VoteFilter()) -> list[Paired]:
        """Rounds both a person and an AI judge voted on (the person's vote passing `f`, whose voter choice is
        ignored): what agreement is measured on."""
        from sqlalchemy.orm import aliased

        from arena.store.export_source import counted_votes

        judge = aliased(VoteRow)
        query: Any = (
            select(judge.voter, BattleRow.model_a, BattleRow.model_b, VoteRow.language, VoteRow.outcome, judge.outcome)
            .join(BattleRow, VoteRow.battle_id == BattleRow.id)
            .join(judge, and_(judge.battle_id == VoteRow.battle_id, judge.turn_index == VoteRow.turn_index))
            .where(judge.voter.like(JUDGE_PREFIX + "%"))
        )
        query = counted_votes(query, replace(f, voters=HUMAN))
        with self._tx() as s:
            rows = list(s.execute(query))
        return [
            Paired(str(v).removeprefix(JUDGE_PREFIX), a, b, lang, Outcome(h), Outcome(j))
            for v, a, b, lang, h, j in rows
        ]

    def judge_readings(self, f: VoteFilter = VoteFilter()) -> list[Reading]:
        """Every stored judgement on battles between `f`'s models, in its days (when judged) and languages (the
        battle's)."""
        from arena.store.export_source import between_models, dated, language_in

        query: Any = select(
            JudgementRow.judge,
            BattleRow.model_a,
            BattleRow.model_b,
            JudgementRow.first_verdict,
            JudgementRow.second_verdict,
            JudgementRow.verdict,
        ).join(BattleRow, JudgementRow.battle_id == BattleRow.id)
        query = between_models(dated(query, JudgementRow.created_at, f), f)
        if f.languages is not None:
            query = query.where(language_in(BattleRow.language, f.languages))
        with self._tx() as s:
            return [Reading(*row) for row in s.execute(query)]

    def voter_kinds(self) -> list[str]:
        """The voters with counted votes: "human" and each "judge:NAME"."""
        with self._tx() as s:
            return sorted(s.scalars(select(VoteTotalRow.voter).distinct()), key=lambda v: (v != HUMAN, v))

    def round_vote(self, battle_id: str, turn_index: int) -> StoredVote | None:
        """The vote stored on one round of a battle, or None."""
        query = select(VoteRow).where(
            VoteRow.battle_id == battle_id, VoteRow.turn_index == turn_index, VoteRow.voter == HUMAN
        )
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
        if f.category is not None:
            query = query.where(c.categories.op("&")(bit(f.category)) != 0)
        if (kept := voters_kept(c.voter, f.voters)) is not None:
            query = query.where(kept)
        with self._tx() as s:
            return [(a, b, Outcome(o), int(n)) for a, b, o, n in s.execute(query)]

    def voter_outcomes(self, f: VoteFilter = VoteFilter()) -> list[tuple[str, str, str, Outcome, int]]:
        """The votes `f` keeps, aggregated to (voter, model_a, model_b, outcome, count), side A as shown: what the
        audit reads. A voter is the salted IP hash, or the session where none was kept, or "" for a pruned vote
        (one row per vote at worst: this reads the votes themselves, not the counts table)."""
        from arena.store.export_source import counted_votes

        # a pruned vote has lost its voter (no IP hash, session "pruned"): "" keeps it out of the voter counts
        pruned = and_(VoteRow.ip_hash.is_(None), VoteRow.session_id == retention.PRUNED)
        voter = case((pruned, ""), else_=func.coalesce(VoteRow.ip_hash, VoteRow.session_id))
        columns = (voter, BattleRow.model_a, BattleRow.model_b, VoteRow.outcome)
        joined: Any = select(*columns, func.count()).join(BattleRow, VoteRow.battle_id == BattleRow.id)
        query = counted_votes(joined, f).group_by(*columns)
        with self._tx() as s:
            rows: list[Any] = list(s.execute(query))
        return [(str(v), str(a), str(b), Outcome(o), int(n)) for v, a, b, o, n in rows]

    def style_votes(self, f: VoteFilter = VoteFilter()) -> StyleVotes:
        """The votes `f` keeps that carry both sides' style, as columns (one entry per vote, read in the database's
        order, not grouped: style sums rarely repeat, so grouping would only sort): what style-controlled ratings
        are fitted on."""
        import numpy as np

        from arena.store.export_source import counted_votes

        style = [getattr(VoteRow, f"style_{side}_{name}") for side in "ab" for name in STYLE_NAMES]
        joined: Any = select(BattleRow.model_a, BattleRow.model_b, VoteRow.outcome, *style).join(
            BattleRow, VoteRow.battle_id == BattleRow.id
        )
        query = counted_votes(joined, f).where(*(c.is_not(None) for c in style))
        with self._tx() as s:
            rows: list[Any] = list(s.execute(query).all())
        columns = list(zip(*rows, strict=True)) if rows else [()] * (3 + len(style))
        counts = np.array(columns[3:], dtype=np.float64).reshape(len(style), len(rows)).T
        return StyleVotes(
            model_a=list(columns[0]),
            model_b=list(columns[1]),
            outcome=list(columns[2]),
            counts_a=counts[:, : len(STYLE_NAMES)],
            counts_b=counts[:, len(STYLE_NAMES) :],
        )

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


def _conversations(battle_id: str) -> dict[str, str]:
    """The ids of a battle's two conversations, as the hot writes' parameters conv_a and conv_b."""
    return {f"conv_{side.value}": conversation_id(battle_id, side) for side in Side}


def _answer_status(reply: Reply) -> str:
    """The stored status of an answer (one still streaming when stored did not finish: an error)."""
    return reply.status.value if reply.status is not ReplyStatus.STREAMING else "error"


def _answer_values(side: Side, reply: Reply, params: dict[str, Any]) -> dict[str, Any]:
    """One side's answer as the round's parameters (text_a, status_a, … params_a)."""
    style = style_counts(reply.text)
    values = {
        "text": reply.text,
        "status": _answer_status(reply),
        "error": reply.error,
        "ttft": reply.ttft_ms,
        "total": reply.total_ms,
        "tokens": reply.tokens,
        "params": params,
        "style_tokens": style.tokens,
        "style_headers": style.headers,
        "style_lists": style.lists,
        "style_bold": style.bold,
    }
    return {f"{name}_{side.value}": value for name, value in values.items()}


_MESSAGE_COLUMNS = [c.key for c in MessageRow.__table__.columns if c.key != "id"]


def _message_values(
    conversation_id: str, turn_index: int, role: str, content: str, now: datetime, **columns: Any
) -> dict[str, Any]:
    """A message as the full set of its column values (the rest NULL, status ok)."""
    values = dict.fromkeys(_MESSAGE_COLUMNS)
    values.update(
        conversation_id=conversation_id, turn_index=turn_index, role=role, content=content, status="ok", created_at=now
    )
    values.update(columns)
    return values


def _user_values(
    conversation_id: str, turn_index: int, text: str, now: datetime, language: str | None = None
) -> dict[str, Any]:
    categories = categorise(text, turn_index)
    return _message_values(conversation_id, turn_index, "user", text, now, language=language, categories=categories)


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
        status=_answer_status(reply),
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
