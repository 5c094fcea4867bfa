"""Streaming reads for exports: votes, chat feedback and whole battles in batches, so memory stays flat.

Each reader pages through its table by key (never OFFSET) and loads the messages of one batch at a time; what it
yields are plain dataclasses. Order is deterministic: votes and feedback in the order they were given, battles and
chats in the order they started.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from collections.abc import Collection, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from queue import Full, Queue
from typing import Any, NamedTuple, TypeVar

import orjson
from sqlalchemy import Engine, Integer, Select, and_, bindparam, case, func, literal_column, or_, select
from sqlalchemy.orm import Session

from arena.categories import bit
from arena.domain import HUMAN, BattleMode, Outcome, Side, VoteFilter, conversation_id
from arena.store.schema import BattleRow, ConversationRow, FeedbackRow, MessageRow, VoteRow
from arena.store.voters import voters_kept

BATCH = 2000  # votes a page holds at most
PAGE_BYTES = 2 << 20  # and about this much JSON text: a page of long conversations holds fewer votes
FIRST_PAGE = 50  # votes in the first page, before the size of a vote is known
T = TypeVar("T")


class Turn(NamedTuple):
    """One message of a conversation as exported (a tuple: millions are made in a large export)."""

    role: str
    content: str
    status: str
    language: str | None = None
    categories: int | None = None  # a question's (arena.categories bit mask)


@dataclass(slots=True)
class JudgedRound:
    """A vote and everything needed to turn it into training rows."""

    vote_id: int
    battle_id: str
    turn: int  # 0-based index of the judged round
    outcome: Outcome
    model_a: str
    model_b: str
    mode: str  # anonymous | named | self_play
    anonymous: bool
    identity_leak: bool
    language: str | None
    voted_at: datetime
    session_id: str
    history_a: list[dict[str, str]]  # side A's conversation up to and including the judged answer, as
    history_b: list[dict[str, str]]  # TRL's {"role", "content"} messages
    stopped: bool  # a judged answer was stopped by the voter before it ended
    categories: int = 0  # the judged round's question's categories (arena.categories bit mask)
    voter: str = HUMAN  # "human", or the AI judge that cast it ("judge:NAME")


@dataclass(slots=True)
class RatedAnswer:
    """A 👍/👎 on one single-chat answer, with the conversation before it."""

    feedback_id: int
    conversation_id: str
    turn: int
    model: str
    up: bool
    language: str | None
    rated_at: datetime
    session_id: str
    prompt: list[Turn]  # the conversation up to and including the question that was answered
    answer: str


@dataclass(frozen=True, slots=True)
class StoredTurn:
    """Every stored field of a message, for audits."""

    turn: int
    role: str
    content: str
    status: str
    model: str | None
    error: str | None
    ttft_ms: float | None
    total_ms: float | None
    tokens: int | None
    params: dict[str, Any] | None
    language: str | None
    categories: int | None  # a question's (arena.categories bit mask); None for answers
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RawVote:
    """A vote, for audits."""

    turn: int
    outcome: Outcome
    anonymous: bool
    identity_leak: bool
    language: str | None
    session_id: str
    created_at: datetime
    categories: int = 0  # the judged round's question's (arena.categories bit mask)
    voter: str = HUMAN  # "human", or the AI judge that cast it ("judge:NAME")


@dataclass(frozen=True, slots=True)
class RawFeedback:
    """A chat rating, for audits."""

    turn: int
    rating: str
    tags: list[str]
    comment: str | None
    session_id: str
    created_at: datetime


@dataclass(frozen=True)
class RawRecord:
    """A whole battle or chat with every message, vote and rating (superseded and failed answers included)."""

    kind: str  # battle | chat
    id: str
    models: dict[str, str]  # side → model ("a"/"b" for battles, "model" for chats)
    mode: str | None
    status: str | None
    anonymous: bool | None
    identity_leak: bool
    language: str | None
    session_id: str
    started_at: datetime
    finished_at: datetime | None
    conversations: dict[str, list[StoredTurn]]
    votes: list[RawVote] = field(default_factory=list)
    feedback: list[RawFeedback] = field(default_factory=list)


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _day(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def dated(query: Select[Any], column: Any, f: VoteFilter) -> Select[Any]:
    """Keep rows whose `column` falls in the filters' whole UTC days (since inclusive, until exclusive)."""
    if f.since is not None:
        query = query.where(column >= _day(f.since))
    if f.until is not None:
        query = query.where(column < _day(f.until))
    return query


def between_models(query: Select[Any], f: VoteFilter) -> Select[Any]:
    """Keep battles between the filters' models only."""
    if f.models is not None:
        models = list(f.models)
        query = query.where(BattleRow.model_a.in_(models), BattleRow.model_b.in_(models))
    return query


# what both vote readers take from a vote, in this order
_VOTE_COLUMNS = (
    VoteRow.battle_id,
    VoteRow.turn_index,
    VoteRow.outcome,
    VoteRow.anonymous,
    VoteRow.identity_leak,
    VoteRow.language,
    VoteRow.session_id,
    VoteRow.created_at,
)
# the columns of a page of judged votes, then each side's history (see _HISTORY_SQL)
_PAGE_COLUMNS = (
    VoteRow.id,
    *_VOTE_COLUMNS,
    BattleRow.model_a,
    BattleRow.model_b,
    BattleRow.mode,
    VoteRow.categories,
    VoteRow.voter,
)
# StoredTurn's fields (but created_at, made UTC on reading) and the message columns they are read from
_STORED_TURN_COLUMNS: dict[str, Any] = {
    "turn": MessageRow.turn_index,
    "role": MessageRow.role,
    "content": MessageRow.content,
    "status": MessageRow.status,
    "model": MessageRow.model,
    "error": MessageRow.error,
    "ttft_ms": MessageRow.ttft_ms,
    "total_ms": MessageRow.total_ms,
    "tokens": MessageRow.token_count,
    "params": MessageRow.generation_params,
    "language": MessageRow.language,
    "categories": MessageRow.categories,
}


def kept_flags(f: VoteFilter) -> list[Any]:
    """The conditions on a vote's named / leaked / self-play flags that the filters keep (votes joined to battles)."""
    kept: list[Any] = []
    if not f.include_named:
        kept.append(VoteRow.anonymous.is_(True))
    if not f.include_leaks:
        kept.append(VoteRow.identity_leak.is_(False))
    if not f.include_self_play:
        kept.append(BattleRow.mode != BattleMode.SELF_PLAY.value)
    return kept


def counted_votes(query: Select[Any], f: VoteFilter) -> Select[Any]:
    """Keep the votes the filters count, on a query that joins votes to their battles: days, models, languages,
    depth, and the named / leaked / self-play flags (which the exports count as left out instead)."""
    return ExportSource.scope(query, f).where(*kept_flags(f))


class LeftOut:
    """Why the vote filters keep a vote out, checked in this order: a vote both named and leaked counts as named."""

    NAMED = "named"
    LEAK = "leak"
    SELF_PLAY = "self_play"


def left_out(f: VoteFilter, anonymous: bool, leak: bool, mode: str) -> str | None:
    """The `LeftOut` reason the filters keep out a vote with these flags, or None when they keep it."""
    if not anonymous and not f.include_named:
        return LeftOut.NAMED
    if leak and not f.include_leaks:
        return LeftOut.LEAK
    if mode == BattleMode.SELF_PLAY and not f.include_self_play:
        return LeftOut.SELF_PLAY
    return None


# One side's conversation up to the judged round as TRL messages, and whether the voter stopped its judged answer:
# the JSON [[{"role", "content"}, …], 0 or 1], built by the database. One row per vote instead of one per message,
# and no Python work per message. (SQLite 3.40 has no ORDER BY inside an aggregate.) A superseded answer is no
# longer part of the conversation.
_HISTORY_SQL = {
    # the index hands the rows over in (turn_index, id) order, which json_group_array keeps; INDEXED BY pins it
    "sqlite": "(SELECT json_array(json_group_array(json_object('role', role, 'content', content)), "
    "max(turn_index = votes.turn_index AND role = 'assistant' AND status = 'stopped')) "
    "FROM messages INDEXED BY ix_messages_conversation_turn "
    "WHERE conversation_id = votes.battle_id || '{suffix}' AND turn_index <= votes.turn_index "
    "AND status <> 'superseded')",
    "postgresql": "(SELECT json_build_array(coalesce(json_agg(json_build_object('role', role, 'content', content) "
    "ORDER BY turn_index, id), '[]'), "
    "coalesce(max((turn_index = votes.turn_index AND role = 'assistant' AND status = 'stopped')::int), 0))::text "
    "FROM messages WHERE conversation_id = votes.battle_id || '{suffix}' "
    "AND turn_index <= votes.turn_index AND status <> 'superseded')",
}
_OUTCOMES = {outcome.value: outcome for outcome in Outcome}
# A page of votes as one JSON array of rows: [history A, history B, then the columns of _PAGE_COLUMNS]. SQLite
# splices the histories in as text (its JSON functions would parse them again: a sub-select hands JSON on as text).
_PAGE_SQL = {
    "sqlite": "'[' || group_concat('[' || coalesce(a, 'null') || ',' || coalesce(b, 'null') || ',' "
    "|| substr(json_array({columns}), 2), ',') || ']'",
    "postgresql": "json_agg(json_build_array(a::json, b::json, {columns}) ORDER BY id)::text",
}


def _history(dialect: str, side: Side) -> Any:
    """The SQL column holding `side`'s history of the vote's battle up to the judged round (JSON text)."""
    try:
        template = _HISTORY_SQL[dialect]
    except KeyError:
        raise NotImplementedError(f"exports read SQLite or PostgreSQL, not {dialect}") from None
    return literal_column(template.format(suffix=conversation_id("", side)))


class ExportSource:
    """Streaming, read-only access to what exports need."""

    def __init__(self, engine: Engine, *, batch: int | None = None) -> None:
        self._engine = engine
        self._batch = batch or BATCH
        self.left_out: Counter[str] = Counter()  # votes judged_rounds read and the filters kept out, by LeftOut

    # --- votes ----------------------------------------------------------------------------------------

    @staticmethod
    def scope(query: Select[Any], f: VoteFilter) -> Select[Any]:
        """Keep the votes in the filters' days, models, languages and depth (the other filters are `left_out`)."""
        query = between_models(dated(query, VoteRow.created_at, f), f)
        if f.languages is not None:
            query = query.where(language_in(VoteRow.language, f.languages))
        if f.min_turns > 1:
            query = query.where(VoteRow.turn_index >= f.min_turns - 1)
        if f.category is not None:
            query = query.where(VoteRow.categories.op("&")(bit(f.category)) != 0)
        if (cast := voters_kept(VoteRow.voter, f.voters)) is not None:
            query = query.where(cast)
        return query

    def _judged_query(self, f: VoteFilter, dialect: str) -> Select[Any]:
        """The next `:limit` votes after id `:after`, as one JSON text, and the last id among them."""
        kept = kept_flags(f)
        reads = [_history(dialect, side) for side in Side]
        if kept:  # the database reads no history for a vote that is only counted as left out
            reads = [case((and_(*kept), column), else_=None) for column in reads]
        columns = [*_PAGE_COLUMNS, *(read.label(side.value) for read, side in zip(reads, Side, strict=True))]
        query: Select[Any] = select(*columns).join(BattleRow, VoteRow.battle_id == BattleRow.id)
        page = self.scope(query, f).where(VoteRow.id > bindparam("after"))
        page = page.order_by(VoteRow.id).limit(bindparam("limit", type_=Integer))
        whole = _PAGE_SQL[dialect].format(columns=", ".join(c.key for c in _PAGE_COLUMNS))
        paged: Any = select(literal_column(whole), literal_column("max(id)"))
        return paged.select_from(page.subquery("page"))  # type: ignore[no-any-return]

    def judged_rounds(self, filters: VoteFilter) -> Iterator[JudgedRound]:
        """Every vote passing the filters, in the order cast, with both sides' conversations up to the vote.

        One query per page of votes, answered as one JSON text: the database builds a whole page in one step,
        without the GIL, in a thread of its own while Python shapes the page before. Pages hold up to `BATCH` votes
        and about `PAGE_BYTES` of text: long conversations make smaller pages, so memory stays flat however long
        the histories (each vote carries its own). The votes the filters leave out (named, leaked, self-play) are
        read in the same pass and only counted, by `LeftOut` reason, in `left_out`.
        """
        query = self._judged_query(filters, self._engine.dialect.name)

        def pages() -> Iterator[str]:
            after, limit = 0, min(self._batch, FIRST_PAGE)
            while True:
                with self._engine.connect() as conn:
                    text, last = conn.execute(query, {"after": after, "limit": limit}).one()
                if last is None:
                    return
                yield text
                after = last
                limit = max(1, min(self._batch, limit * PAGE_BYTES // max(1, len(text))))

        parse = datetime.fromisoformat
        for text in prefetched(pages()):
            for (
                a,
                b,
                vote,
                battle,
                turn,
                outcome,
                anon,
                leak,
                lang,
                session,
                when,
                m_a,
                m_b,
                mode,
                cats,
                who,
            ) in orjson.loads(text):
                if a is None and (reason := left_out(filters, anon, leak, mode)) is not None:
                    self.left_out[reason] += 1
                    continue
                at = parse(when)
                yield JudgedRound(
                    vote,
                    battle,
                    turn,
                    _OUTCOMES[outcome],
                    m_a,
                    m_b,
                    mode,
                    bool(anon),
                    bool(leak),
                    lang,
                    at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC),  # as_utc, inlined
                    session,
                    a[0],
                    b[0],
                    bool(a[1] or b[1]),
                    cats or 0,
                    who,
                )

    @staticmethod
    def _turns(conn: Any, conversation_ids: Sequence[str]) -> dict[str, list[tuple[int, Turn]]]:
        """The current (not superseded) messages of these conversations, in order, with their round index.

        Thousands of ids per batch, so it goes to the driver as plain SQL: SQLAlchemy's expanding IN costs more
        than the query itself.
        """
        cursor = conn.connection.driver_connection.cursor()
        columns = "conversation_id, turn_index, role, content, status, language, categories"
        tail = "AND status <> 'superseded' ORDER BY conversation_id, turn_index, id"
        if conn.dialect.name == "postgresql":
            cursor.execute(
                f"SELECT {columns} FROM messages WHERE conversation_id = ANY(%s) {tail}", (list(conversation_ids),)
            )
        else:
            marks = ",".join("?" * len(conversation_ids))
            cursor.execute(
                f"SELECT {columns} FROM messages WHERE conversation_id IN ({marks}) {tail}", conversation_ids
            )
        out: dict[str, list[tuple[int, Turn]]] = defaultdict(list)
        for conv, index, role, content, status, language, categories in cursor.fetchall():
            out[conv].append((index, Turn(role, content, status, language, categories)))
        cursor.close()
        return out

    # --- chat feedback --------------------------------------------------------------------------------

    def rated_answers(self, filters: VoteFilter) -> Iterator[RatedAnswer]:
        """Every 👍/👎 on a chat answer passing the date and model filters, in the order given (people's ratings:
        none when the filters ask for AI judges' votes only)."""
        if filters.voters not in (HUMAN, "all"):
            return
        query: Any = (
            select(
                FeedbackRow.id,
                FeedbackRow.rating,
                FeedbackRow.created_at,
                FeedbackRow.session_id,
                MessageRow.conversation_id,
                MessageRow.turn_index,
                MessageRow.content,
                ConversationRow.model,
            )
            .join(MessageRow, FeedbackRow.message_id == MessageRow.id)
            .join(ConversationRow, MessageRow.conversation_id == ConversationRow.id)
        )
        query = dated(query, FeedbackRow.created_at, filters)
        if filters.models is not None:
            query = query.where(ConversationRow.model.in_(list(filters.models)))
        if filters.min_turns > 1:
            query = query.where(MessageRow.turn_index >= filters.min_turns - 1)
        wanted = _lowered(filters.languages)
        chosen = bit(filters.category) if filters.category is not None else 0
        last = 0
        while True:
            with self._engine.connect() as conn:
                rows = conn.execute(
                    query.where(FeedbackRow.id > last).order_by(FeedbackRow.id).limit(self._batch)
                ).all()
                if not rows:
                    return
                turns = self._turns(conn, list({r.conversation_id for r in rows}))
            for r in rows:
                # a failed turn's question was taken back in the chat: the model never saw it, nor does the prompt
                failed = {i for i, t in turns[r.conversation_id] if t.role == "assistant" and t.status == "error"}
                before = [t for i, t in turns[r.conversation_id] if i < r.turn_index and i not in failed]
                question = [t for i, t in turns[r.conversation_id] if i == r.turn_index and t.role == "user"][:1]
                language = question[0].language if question else None
                if wanted is not None and not _language_matches(language, wanted):
                    continue
                if filters.category is not None and not (question and (question[0].categories or 0) & chosen):
                    continue
                yield RatedAnswer(
                    feedback_id=r.id,
                    conversation_id=r.conversation_id,
                    turn=r.turn_index,
                    model=r.model,
                    up=r.rating == "up",
                    language=language,
                    rated_at=as_utc(r.created_at),
                    session_id=r.session_id,
                    prompt=before + question,
                    answer=r.content,
                )
            last = rows[-1].id

    # --- raw records ----------------------------------------------------------------------------------

    def raw_records(self, filters: VoteFilter) -> Iterator[RawRecord]:
        """Every battle, then every chat, that started in the date range and involves only the given models.

        Audits see everything: the named, leak and self-play filters do not apply.
        """
        yield from self._raw_battles(filters)
        yield from self._raw_chats(filters)

    def _raw_battles(self, f: VoteFilter) -> Iterator[RawRecord]:
        query = between_models(dated(select(BattleRow), BattleRow.started_at, f), f)  # named, leaked, self-play: all
        if f.voters == HUMAN:  # automatic battles are the judges' (and `--voters judge:NAME` keeps them)
            query = query.where(BattleRow.mode != BattleMode.AUTO.value)
        if f.languages is not None:
            query = query.where(language_in(BattleRow.language, f.languages))
        for page in self._pages(query, BattleRow.started_at, BattleRow.id):
            with Session(self._engine) as s:
                messages = self._stored_turns(s, [conversation_id(b.id, side) for b in page for side in Side])
                votes = self._raw_votes(s, [b.id for b in page], f.voters)
            for b in page:
                if f.category is not None and not _asked(messages.get(conversation_id(b.id, Side.A), []), f.category):
                    continue
                yield RawRecord(
                    kind="battle",
                    id=b.id,
                    models={"a": b.model_a, "b": b.model_b},
                    mode=b.mode,
                    status=b.status,
                    anonymous=b.anonymous,
                    identity_leak=b.identity_leak,
                    language=b.language,
                    session_id=b.session_id,
                    started_at=as_utc(b.started_at),
                    finished_at=None if b.finished_at is None else as_utc(b.finished_at),
                    conversations={side.value: messages.get(conversation_id(b.id, side), []) for side in Side},
                    votes=votes.get(b.id, []),
                )

    @staticmethod
    def _raw_votes(s: Session, battle_ids: Sequence[str], voters: str) -> dict[str, list[RawVote]]:
        """The votes of these battles that `voters` keeps, in the order cast."""
        query = select(*_VOTE_COLUMNS, VoteRow.categories, VoteRow.voter).where(VoteRow.battle_id.in_(battle_ids))
        if (kept := voters_kept(VoteRow.voter, voters)) is not None:
            query = query.where(kept)
        votes: dict[str, list[RawVote]] = defaultdict(list)
        for battle, turn, outcome, anon, leak, lang, session, created, cats, who in s.execute(
            query.order_by(VoteRow.id)
        ):
            votes[battle].append(RawVote(turn, Outcome(outcome), anon, leak, lang, session, as_utc(created), cats, who))
        return votes

    def _raw_chats(self, f: VoteFilter) -> Iterator[RawRecord]:
        query = select(ConversationRow).where(ConversationRow.kind == "chat")
        query = dated(query, ConversationRow.created_at, f)
        if f.models is not None:
            query = query.where(ConversationRow.model.in_(list(f.models)))
        wanted = _lowered(f.languages)
        for page in self._pages(query, ConversationRow.created_at, ConversationRow.id):
            with Session(self._engine) as s:
                messages = self._stored_turns(s, [c.id for c in page])
                feedback: dict[str, list[RawFeedback]] = defaultdict(list)
                rows = s.execute(
                    select(FeedbackRow, MessageRow.conversation_id, MessageRow.turn_index)
                    .join(MessageRow, FeedbackRow.message_id == MessageRow.id)
                    .where(MessageRow.conversation_id.in_([c.id for c in page]))
                    .order_by(FeedbackRow.id)
                )
                for fb, conv, turn in rows:
                    feedback[conv].append(
                        RawFeedback(
                            turn, fb.rating, list(fb.tags or []), fb.comment, fb.session_id, as_utc(fb.created_at)
                        )
                    )
            for c in page:
                turns = messages.get(c.id, [])
                language = next((t.language for t in turns if t.role == "user" and t.language), None)
                if wanted is not None and not _language_matches(language, wanted):
                    continue
                if f.category is not None and not _asked(turns, f.category):
                    continue
                yield RawRecord(
                    kind="chat",
                    id=c.id,
                    models={"model": c.model},
                    mode=None,
                    status=None,
                    anonymous=None,
                    identity_leak=False,
                    language=language,
                    session_id=c.session_id,
                    started_at=as_utc(c.created_at),
                    finished_at=None,
                    conversations={"model": turns},
                    feedback=feedback.get(c.id, []),
                )

    def _pages(self, query: Select[Any], when: Any, key: Any) -> Iterator[list[Any]]:
        """ORM rows of `query` in (when, key) order, a page at a time, paged by key rather than offset."""
        batch = max(1, self._batch // 4)  # whole battles are heavier than votes
        cursor: tuple[datetime, str] | None = None
        while True:
            page_query = query.order_by(when, key).limit(batch)
            if cursor is not None:
                page_query = page_query.where(or_(when > cursor[0], and_(when == cursor[0], key > cursor[1])))
            with Session(self._engine) as s:
                page = list(s.scalars(page_query))
            if not page:
                return
            yield page
            last = page[-1]
            cursor = (getattr(last, when.key), getattr(last, key.key))

    @staticmethod
    def _stored_turns(s: Session, conversation_ids: Sequence[str]) -> dict[str, list[StoredTurn]]:
        query = (
            select(MessageRow.conversation_id, MessageRow.created_at, *_STORED_TURN_COLUMNS.values())
            .where(MessageRow.conversation_id.in_(conversation_ids))
            .order_by(MessageRow.conversation_id, MessageRow.turn_index, MessageRow.id)
        )
        out: dict[str, list[StoredTurn]] = defaultdict(list)
        for conv, created, *values in s.execute(query):
            fields = dict(zip(_STORED_TURN_COLUMNS, values, strict=True))
            out[conv].append(StoredTurn(**fields, created_at=as_utc(created)))
        return out


def prefetched(items: Iterator[T], depth: int = 2) -> Generator[T, None, None]:
    """`items`, produced by a background thread up to `depth` ahead (the database works while rows are shaped).

    The producer stops when the consumer goes away (the generator is closed or collected) or on the first error,
    which is raised in the consumer.
    """
    queue: Queue[tuple[str, Any]] = Queue(maxsize=depth)
    stop = threading.Event()

    def offer(entry: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                queue.put(entry, timeout=0.1)
                return True
            except Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer(("item", item)):
                    return
            offer(("end", None))
        except BaseException as exc:  # handed to the consumer, which raises it
            offer(("error", exc))

    worker = threading.Thread(target=produce, name="export-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = queue.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        worker.join(timeout=5)


def _asked(turns: Sequence[StoredTurn], category: str) -> bool:
    """Whether a conversation asked at least one question of `category`."""
    wanted = bit(category)
    return any(t.role == "user" and (t.categories or 0) & wanted for t in turns)


def language_in(column: Any, languages: Collection[str]) -> Any:
    """Languages compare without case; "unknown" is what detection stores when unsure, and matches NULL too."""
    wanted = {lang.lower() for lang in languages}
    condition = func.lower(column).in_(sorted(wanted))
    return or_(condition, column.is_(None)) if "unknown" in wanted else condition


def _lowered(languages: Collection[str] | None) -> set[str] | None:
    """The languages to keep, lower-cased once per export (not once per row); None keeps every language."""
    return None if languages is None else {lang.lower() for lang in languages}


def _language_matches(language: str | None, wanted: set[str]) -> bool:
    return (language or "unknown").lower() in wanted
