"""What every export format is made of: its record, the streams it reads, shaped rows, skip reasons, voter ids.

An `ExportFormat` is one record in the table of `arena.export.formats`; the export run, the writers, the dataset
card, the command line and the Export tab read everything format-specific from it (after Datasette's output
renderers: the core never asks which format it is writing).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar, assert_never

from arena.domain import HUMAN, BattleMode, Outcome, VoteFilter
from arena.store.export_source import ExportSource, JudgedRound, RatedAnswer, RawRecord, Turn

T = TypeVar("T")
Row = dict[str, Any]
Message = dict[str, str]  # TRL's conversational message: {"role": …, "content": …}


class Skip:
    """Why a vote gives no row (the summary counts them)."""

    TIE = "tie (not a preference)"
    BOTH_BAD = "both bad (not a preference)"
    EMPTY = "an answer is empty"
    DUPLICATE = "duplicate of an earlier row"


@dataclass(slots=True)
class Shaped:
    """The rows one vote (or rating, or record) becomes, and the reason for any it drops."""

    rows: list[Row]
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

    def of(self, voter: str, session_id: str) -> str:
        """Who cast a vote: an AI judge by its voter name ("judge:NAME"), a person by an anonymous id."""
        return self(session_id) if voter == HUMAN else voter


@dataclass(frozen=True)
class Shaping:
    """What shapers need besides the item: the voter-id anonymiser and, for a margin column, model strengths."""

    judges: Judges
    strengths: Mapping[str, float] | None = None  # natural-log odds per model (the leaderboard's fit)


@dataclass(frozen=True)
class Source(Generic[T]):
    """A stream an export reads from the store."""

    read: Callable[[ExportSource, VoteFilter], Iterator[T]]
    votes: bool  # its items are votes chosen by the filters: the summary counts the votes they left out


JUDGED_ROUNDS: Source[JudgedRound] = Source(ExportSource.judged_rounds, votes=True)
RATED_ANSWERS: Source[RatedAnswer] = Source(ExportSource.rated_answers, votes=False)
RAW_RECORDS: Source[RawRecord] = Source(ExportSource.raw_records, votes=False)


@dataclass(frozen=True)
class Reading(Generic[T]):
    """One stream of a format and the function that shapes each of its items into rows."""

    source: Source[T]
    shape: Callable[[T, Shaping], Shaped]

    def shaped(self, store: ExportSource, filters: VoteFilter, shaping: Shaping) -> Iterator[Shaped]:
        """The shaped items of this stream, in the store's order."""
        return map(self.shape, self.source.read(store, filters), itertools.repeat(shaping))


@dataclass(frozen=True)
class ExportFormat:
    """Everything that makes one export format: the single place a format is declared."""

    name: str  # what --format and the Export tab call it
    explain: str  # the summary wording of --help and the Export tab: what a row is, in a few words
    trainer: str  # what the dataset card says the data is for
    reads: tuple[Reading[Any], ...]  # the streams it reads, in order, each with its shaper
    models: Callable[[Row], Iterable[str]]  # the distinct models a row counts for (summary and card)
    moment: Callable[[Row], datetime]  # when a row's vote (or record) happened, for the date range
    dedup: tuple[str, ...] = ()  # the columns that make two rows the same training example; () keeps every row
    schema: Callable[[Shaping], Any] | None = None  # the Parquet schema (pyarrow); None: JSON Lines only
    margin: bool = False  # takes a margin column from the leaderboard's strengths
    scope: str | None = None  # the card's sentence on what is included, where the vote filters do not say it

    @property
    def counts_left_out(self) -> bool:
        """Whether its rows come from filtered votes, so the summary says how many votes the filters kept out."""
        return any(reading.source.votes for reading in self.reads)


# --- helpers the shapers share -----------------------------------------------------------------------------


def messages(turns: list[Turn]) -> list[Message]:
    """TRL's conversational form."""
    return [{"role": t.role, "content": t.content} for t in turns]


@dataclass(slots=True)
class Decided:
    """A decisive vote seen from its winner: each side's conversation up to the judged answer, and its model."""

    won: list[Message]
    lost: list[Message]
    winner: str
    loser: str


def verdict(outcome: Outcome) -> bool | str:
    """True when A won, False when B won, or the `Skip` reason of an outcome that is not a preference."""
    match outcome:
        case Outcome.A | Outcome.A_SLIGHTLY:  # a slight preference is still a preference
            return True
        case Outcome.B | Outcome.B_SLIGHTLY:
            return False
        case Outcome.TIE:
            return Skip.TIE
        case Outcome.BOTH_BAD:
            return Skip.BOTH_BAD
        case _:
            assert_never(outcome)


_VERDICTS = {outcome: verdict(outcome) for outcome in Outcome}  # looked up once per vote of a large export
_SELF_PLAY = BattleMode.SELF_PLAY.value


def decided(vote: JudgedRound) -> Decided | str:
    """The winner and loser of a decisive vote, or the `Skip` reason of a vote that is not a preference."""
    a_won = _VERDICTS[vote.outcome]
    if a_won is True:
        return Decided(vote.history_a, vote.history_b, vote.model_a, vote.model_b)
    if a_won is False:
        return Decided(vote.history_b, vote.history_a, vote.model_b, vote.model_a)
    return a_won


def answered(history: list[Message]) -> bool:
    """Whether a conversation ends on a non-blank answer."""
    if not history:
        return False
    last = history[-1]
    return last["role"] == "assistant" and bool(last["content"]) and not last["content"].isspace()


def both_answered(vote: JudgedRound) -> bool:
    """Whether both judged answers are non-blank."""
    return answered(vote.history_a) and answered(vote.history_b)


def preference_pair(vote: JudgedRound) -> Decided | str:
    """The winner and loser of a vote that makes a preference pair, or the `Skip` reason of one that does not.

    A win over an empty answer is no judgement of the winner's answer, so it is no pair either.
    """
    sides = decided(vote)
    if isinstance(sides, str):
        return sides
    return sides if both_answered(vote) else Skip.EMPTY


def vote_metadata(vote: JudgedRound, judges: Judges) -> Row:
    """The metadata columns every training row of a vote carries."""
    return {
        "battle_id": vote.battle_id,
        "turn": vote.turn + 1,
        "language": vote.language or "unknown",
        "self_play": vote.mode == _SELF_PLAY,
        "anonymous": vote.anonymous,
        "stopped": vote.stopped,
        "judge": judges.of(vote.voter, vote.session_id),
        "voted_at": vote.voted_at.isoformat(),
    }


def voted_at(row: Row) -> datetime:
    """When a training row's vote (or rating) was cast."""
    return datetime.fromisoformat(row["voted_at"])


def pair_models(row: Row) -> set[str]:
    """The models of a chosen/rejected row (a self-play row counts its model once)."""
    return {row["model_chosen"], row["model_rejected"]}


def row_model(row: Row) -> tuple[str]:
    """The one model of a row about a single answer."""
    return (row["model"],)


# --- Parquet column types (pyarrow is imported only when a Parquet file is written) ------------------------


def conversation_type() -> Any:
    """A list of {"role", "content"} messages."""
    import pyarrow as pa

    return pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))


def metadata_columns() -> list[tuple[str, Any]]:
    """The columns of `vote_metadata` but `battle_id` (formats place it themselves)."""
    import pyarrow as pa

    return [
        ("turn", pa.int32()),
        ("language", pa.string()),
        ("self_play", pa.bool_()),
        ("anonymous", pa.bool_()),
        ("stopped", pa.bool_()),
        ("judge", pa.string()),
        ("voted_at", pa.string()),
    ]
