"""The hot writes — a new battle, a round of answers, a vote — in the fewest statements each database allows.

SQLite runs them as a few short statements in a shared, group-committed transaction (arena.store.group_commit);
PostgreSQL runs each as one statement (a data-modifying CTE), autocommitted (plus the pool's pre-ping). The rules
are the same on both and live in the SQL (a vote needs its voter's battle, not errored, with both answers of the
round stored); `vote_refusal` names the reason the SQL refused a vote.

The statements go straight to the driver (exec_driver_sql): SQLAlchemy's compiler costs more than SQLite takes to
run them. Their parameters are converted once per call by SQLAlchemy's own type processors, so the stored values
are the ones the ORM would store.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, Connection, CursorResult, DateTime, Dialect, Engine, Row
from sqlalchemy.types import TypeEngine

from arena.store.errors import UnknownBattle
from arena.store.group_commit import GroupCommit, OneStatement, Writer

Values = Mapping[str, Any]
ANSWERED = ("ok", "stopped")  # assistant message statuses that make a round votable
# parameters the driver cannot take as they are, with the column types that convert them
_TYPED: dict[str, TypeEngine[Any]] = {"now": DateTime(timezone=True), "params_a": JSON(), "params_b": JSON()}


@functools.cache
def _converters(dialect: Dialect) -> dict[str, Callable[[Any], Any]]:
    """SQLAlchemy's conversions of the typed parameters for this dialect's driver (None: taken as they are)."""
    converters = {name: t.dialect_impl(dialect).bind_processor(dialect) for name, t in _TYPED.items()}
    return {name: convert for name, convert in converters.items() if convert is not None}


def for_driver(dialect: Dialect, values: Values) -> dict[str, Any]:
    """`values` as the driver takes them. Converted in the caller's thread, before the write is queued: a value
    that cannot be converted fails its own call, never a batch of other callers' writes."""
    converted = dict(values)
    for name, convert in _converters(dialect).items():
        if name in converted:
            converted[name] = convert(converted[name])
    return converted


@functools.cache
def _placeholders(statement: str, paramstyle: str) -> str:
    """`statement` with its :name placeholders in the driver's style: psycopg wants %(name)s, sqlite3 takes
    :name as written."""
    return re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", statement) if paramstyle == "pyformat" else statement


def _run(conn: Connection, statement: str, values: Values) -> CursorResult[Any]:
    """Run one statement with values converted by `for_driver`."""
    return conn.exec_driver_sql(_placeholders(statement, conn.dialect.paramstyle), values)


# --- shared by both dialects ---------------------------------------------------------------------------------

INSERT_BATTLE = """
    INSERT INTO battles (id, model_a, model_b, anonymous, status, session_id, ip_hash, started_at, mode,
                         identity_leak, language)
    VALUES (:battle_id, :model_a, :model_b, :anonymous, 'open', :session_id, :ip_hash, :now, :mode, false,
            :language)"""
INSERT_CONVERSATIONS = """
    INSERT INTO conversations (id, kind, battle_id, side, model, session_id, ip_hash, created_at)
    VALUES (:conv_a, 'battle', :battle_id, 'a', :model_a, :session_id, :ip_hash, :now),
           (:conv_b, 'battle', :battle_id, 'b', :model_b, :session_id, :ip_hash, :now)"""
# the status in SQL, not from a row read before: a concurrent close (idle battles) must not be undone or lost
ROUND_BATTLE = """
    UPDATE battles
    SET status = CASE WHEN :errored THEN 'errored' WHEN status = 'incomplete' THEN 'open' ELSE status END,
        finished_at = CASE WHEN :errored THEN :now ELSE finished_at END,
        identity_leak = CASE WHEN :identity_leak THEN true ELSE identity_leak END
    WHERE id = :battle_id
    RETURNING model_a, model_b"""
SUPERSEDE = """
    UPDATE messages SET status = 'superseded'
    WHERE conversation_id IN (:conv_a, :conv_b) AND turn_index = :turn_index AND role = 'assistant'
      AND status <> 'superseded'"""
MESSAGE_COLUMNS = """conversation_id, turn_index, role, content, model, status, error, ttft_ms, total_ms,
                     token_count, generation_params, created_at, language,
                     style_tokens, style_headers, style_lists, style_bold, categories"""
ANSWERS = f"""
    SELECT count(*) FROM messages
    WHERE conversation_id IN (:conv_a, :conv_b) AND turn_index = :turn_index AND role = 'assistant'
      AND status IN ({", ".join(f"'{status}'" for status in ANSWERED)})"""
VOTE_CHECK = f"SELECT status, session_id, ({ANSWERS}) AS answers FROM battles WHERE id = :battle_id"
STYLE_NAMES = ("tokens", "headers", "lists", "bold")
VOTE_COLUMNS = (
    "battle_id, turn_index, outcome, anonymous, session_id, ip_hash, created_at, identity_leak, language, categories, "
    + ", ".join(f"style_{side}_{name}" for side in "ab" for name in STYLE_NAMES)
)
# the judged round's question's categories (0 for none: count keys compare)
VOTE_CATEGORIES = """COALESCE((SELECT categories FROM messages
    WHERE conversation_id = :conv_a AND turn_index = :turn_index AND role = 'user'), 0)"""
# each side's style up to the judged round: sums over its stored answers (a regenerated round's newest only)
VOTE_STYLE = ", ".join(
    f"(SELECT SUM(style_{name}) FROM messages WHERE conversation_id = :conv_{side} AND turn_index <= :turn_index"
    " AND role = 'assistant' AND status <> 'superseded')"
    for side in "ab"
    for name in STYLE_NAMES
)
CELL = "model_a, model_b, outcome, anonymous, identity_leak, mode, language, categories, voter"
COUNT_DAY = f"ON CONFLICT ({CELL}, day) DO UPDATE SET count = vote_counts.count + 1"
COUNT_TOTAL = f"ON CONFLICT ({CELL}) DO UPDATE SET count = vote_totals.count + 1"


def vote_refusal(check: Row[Any] | None, vote: Values) -> UnknownBattle:
    """Why the SQL refused a vote, from its battle's (status, session_id, answers) or None when there is none."""
    if check is None or check.status == "errored" or check.session_id != vote["session_id"]:
        return UnknownBattle(vote["battle_id"])
    return UnknownBattle(f"{vote['battle_id']} round {vote['turn_index']} has no complete answers")


# --- SQLite: a few statements in the batch's transaction (each call in a savepoint of its own) --------------


@functools.cache
def _sqlite_rows(user: bool) -> str:
    """The round's messages: a question and an answer per side, or only the answers of a regenerated round."""
    user_row = (
        "(:conv_{side}, :turn_index, 'user', :user_text, NULL, 'ok', NULL, NULL, NULL, NULL, 'null', :now, :language,"
        " NULL, NULL, NULL, NULL, :categories)"
    )
    answer = (
        "(:conv_{side}, :turn_index, 'assistant', :text_{side}, :model_{side}, :status_{side}, :error_{side},"
        " :ttft_{side}, :total_{side}, :tokens_{side}, :params_{side}, :now, NULL,"
        " :style_tokens_{side}, :style_headers_{side}, :style_lists_{side}, :style_bold_{side}, NULL)"
    )
    rows = [row.format(side=side) for side in "ab" for row in ([user_row] if user else []) + [answer]]
    return f"INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES {', '.join(rows)}"


SQLITE_VOTED = f"""
    UPDATE battles SET status = 'voted', finished_at = :now
    WHERE id = :battle_id AND status <> 'errored' AND session_id = :session_id AND ({ANSWERS}) = 2
    RETURNING model_a, model_b, mode"""
SQLITE_INSERT_VOTE = f"""
    INSERT INTO votes ({VOTE_COLUMNS})
    VALUES (:battle_id, :turn_index, :outcome, :anonymous, :session_id, :ip_hash, :now, :identity_leak, :language,
            {VOTE_CATEGORIES}, {VOTE_STYLE})
    RETURNING categories"""
SQLITE_COUNT_DAY = f"""
    INSERT INTO vote_counts ({CELL}, day, count)
    VALUES (:model_a, :model_b, :outcome, :anonymous, :identity_leak, :mode, :cell_language,
            :categories, 'human', :day, 1) {COUNT_DAY}"""
SQLITE_COUNT_TOTAL = f"""
    INSERT INTO vote_totals ({CELL}, count)
    VALUES (:model_a, :model_b, :outcome, :anonymous, :identity_leak, :mode, :cell_language,
            :categories, 'human', 1) {COUNT_TOTAL}"""


def _sqlite_create_battle(conn: Connection, battle: Values) -> None:
    _run(conn, INSERT_BATTLE, battle)
    _run(conn, INSERT_CONVERSATIONS, battle)


def _sqlite_record_round(conn: Connection, round_: Values) -> None:
    battle = _run(conn, ROUND_BATTLE, round_).first()
    if battle is None:
        raise UnknownBattle(round_["battle_id"])
    if round_["regenerated"]:
        _run(conn, SUPERSEDE, round_)
    models = {"model_a": battle.model_a, "model_b": battle.model_b}
    _run(conn, _sqlite_rows(user=not round_["regenerated"]), {**round_, **models})


def _sqlite_record_vote(conn: Connection, vote: Values) -> None:
    battle = _run(conn, SQLITE_VOTED, vote).first()
    if battle is None:
        raise vote_refusal(_run(conn, VOTE_CHECK, vote).first(), vote)
    # a duplicate vote fails here, before anything is counted; the vote's categories key its count cells
    categories = _run(conn, SQLITE_INSERT_VOTE, vote).scalar()
    cell = {**vote, "model_a": battle.model_a, "model_b": battle.model_b, "mode": battle.mode, "categories": categories}
    _run(conn, SQLITE_COUNT_DAY, cell)
    _run(conn, SQLITE_COUNT_TOTAL, cell)


# --- PostgreSQL: each write one statement (a data-modifying CTE), autocommitted -------------------------------


@functools.cache
def _postgresql_round(user: bool) -> str:
    """The round's statement: the battle updated, the replaced answers superseded (regenerated), the new stored."""
    no_style = ", ".join(["CAST(NULL AS integer)"] * 4)
    user_row = (
        "(:conv_{side}, 'user', :user_text, NULL, 'ok', NULL, NULL, NULL, NULL, CAST('null' AS json), :language, "
        + no_style
        + ", CAST(:categories AS integer))"
    )
    style = ", ".join(f"CAST(:style_{name}_{{side}} AS integer)" for name in ("tokens", "headers", "lists", "bold"))
    answer = (
        "(:conv_{side}, 'assistant', :text_{side}, battle.model_{side}, :status_{side}, :error_{side},"
        " CAST(:ttft_{side} AS double precision), CAST(:total_{side} AS double precision),"
        " CAST(:tokens_{side} AS integer), :params_{side}, CAST(NULL AS varchar), " + style + ", CAST(NULL AS integer))"
    )
    rows = [row.format(side=side) for side in "ab" for row in ([user_row] if user else []) + [answer]]
    supersede = "" if user else f"superseded AS ({SUPERSEDE}),"
    return f"""
    WITH battle AS ({ROUND_BATTLE}),
    {supersede}
    stored AS (
        INSERT INTO messages ({MESSAGE_COLUMNS})
        SELECT r.conversation_id, :turn_index, r.role, r.content, r.model, r.status, r.error, r.ttft_ms, r.total_ms,
               r.token_count, r.generation_params, :now, r.language,
               r.style_tokens, r.style_headers, r.style_lists, r.style_bold, r.categories
        FROM battle, LATERAL (VALUES {", ".join(rows)})
            AS r (conversation_id, role, content, model, status, error, ttft_ms, total_ms, token_count,
                  generation_params, language, style_tokens, style_headers, style_lists, style_bold, categories)
    )
    SELECT count(*) AS battles FROM battle"""


POSTGRESQL_BATTLE = f"WITH battle AS ({INSERT_BATTLE}) {INSERT_CONVERSATIONS}"
POSTGRESQL_VOTE = f"""
    WITH battle AS (
        SELECT id, model_a, model_b, mode, status, session_id, ({ANSWERS}) AS answers,
               {VOTE_CATEGORIES} AS categories
        FROM battles WHERE id = :battle_id
    ),
    allowed AS (SELECT * FROM battle WHERE status <> 'errored' AND session_id = :session_id AND answers = 2),
    vote AS (
        INSERT INTO votes ({VOTE_COLUMNS})
        SELECT id, :turn_index, :outcome, :anonymous, :session_id, :ip_hash, :now, :identity_leak, :language,
               categories, {VOTE_STYLE}
        FROM allowed
        RETURNING battle_id
    ),
    voted AS (UPDATE battles SET status = 'voted', finished_at = :now WHERE id IN (SELECT battle_id FROM vote)),
    daily AS (
        INSERT INTO vote_counts ({CELL}, day, count)
        SELECT model_a, model_b, :outcome, :anonymous, :identity_leak, mode, :cell_language, categories, 'human',
               :day, 1
        FROM allowed
        {COUNT_DAY}
    ),
    total AS (
        INSERT INTO vote_totals ({CELL}, count)
        SELECT model_a, model_b, :outcome, :anonymous, :identity_leak, mode, :cell_language, categories, 'human', 1
        FROM allowed
        {COUNT_TOTAL}
    )
    SELECT status, session_id, answers, (SELECT count(*) FROM vote) AS stored FROM battle"""


def _postgresql_create_battle(conn: Connection, battle: Values) -> None:
    _run(conn, POSTGRESQL_BATTLE, battle)


def _postgresql_record_round(conn: Connection, round_: Values) -> None:
    statement = _postgresql_round(user=not round_["regenerated"])
    if not _run(conn, statement, round_).scalar():
        raise UnknownBattle(round_["battle_id"])


def _postgresql_record_vote(conn: Connection, vote: Values) -> None:
    check = _run(conn, POSTGRESQL_VOTE, vote).first()
    if check is None or not check.stored:
        raise vote_refusal(check, vote)


# --- the registry --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HotWrites:
    """One dialect's statements for the hot writes, and how it runs them (each function is given a connection)."""

    writer: Callable[[Engine], Writer]
    create_battle: Callable[[Connection, Values], None]
    record_round: Callable[[Connection, Values], None]
    record_vote: Callable[[Connection, Values], None]


DIALECTS: dict[str, HotWrites] = {
    "sqlite": HotWrites(GroupCommit, _sqlite_create_battle, _sqlite_record_round, _sqlite_record_vote),
    "postgresql": HotWrites(OneStatement, _postgresql_create_battle, _postgresql_record_round, _postgresql_record_vote),
}


def hot_writes(dialect: str) -> HotWrites:
    """The hot writes of `dialect`; Corral stores its data in SQLite or PostgreSQL only."""
    try:
        return DIALECTS[dialect]
    except KeyError:
        raise ValueError(f"Corral stores its data in SQLite or PostgreSQL, not {dialect}") from None
