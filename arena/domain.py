"""Plain data the arena passes around: sides, outcomes, replies and the live state of a battle."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: the command-line tools use these dataclasses without pydantic's import
    from backends.base import GenerationParams, Message


class Side(StrEnum):
    """Which pane a contestant is in."""

    A = "a"
    B = "b"


class Outcome(StrEnum):
    """What a voter said about one round."""

    A = "a"
    B = "b"
    TIE = "tie"
    BOTH_BAD = "both_bad"
    A_SLIGHTLY = "a_slightly"  # a weak preference (shown only with arena.slight_preferences)
    B_SLIGHTLY = "b_slightly"


def conversation_id(battle_id: str, side: Side | str) -> str:
    """The stored id of one side's conversation in a battle."""
    return f"{battle_id}-{Side(side).value}"


@dataclass(frozen=True)
class VoteFilter:
    """Which votes count: one spelling for the leaderboard, exports, matchmaking and the store.

    The defaults are the leaderboard's: anonymous votes only, no identity leak, no self-play, every language and
    day. Days are whole UTC days: `since` inclusive, `until` exclusive. `languages` holds detected question
    languages ("unknown": none was detected); `models` keeps votes whose two contestants are both among them.
    """

    since: date | None = None
    until: date | None = None
    models: Collection[str] | None = None
    languages: Collection[str] | None = None
    include_named: bool = False
    include_leaks: bool = False
    include_self_play: bool = False
    min_turns: int = 1  # the judged round is at least this deep in its conversation (1 = every round)
    category: str | None = None  # only votes on questions of this category (arena.categories); None: every one
    voters: str = "human"  # whose votes: "human", "judge:NAME", "judges" (every AI judge) or "all"


HUMAN = "human"
"""The voter kind of a person's vote."""
JUDGE_PREFIX = "judge:"
"""An AI judge's votes are cast as "judge:NAME"."""
VOTER_CHOICES = ("human", "judges", "all")
"""The voter filters besides one judge's "judge:NAME"."""


def judge_voter(name: str) -> str:
    """The voter kind of the AI judge called `name`."""
    return JUDGE_PREFIX + name


def check_voters(voters: str) -> str:
    """`voters` if it is a voter filter Corral knows, else a ValueError in a sentence."""
    if voters in VOTER_CHOICES or (voters.startswith(JUDGE_PREFIX) and len(voters) > len(JUDGE_PREFIX)):
        return voters
    raise ValueError(f"voters must be human, judges, all or judge:NAME, not '{voters}'")


class ReplyStatus(StrEnum):
    """How a reply ended."""

    STREAMING = "streaming"
    OK = "ok"
    STOPPED = "stopped"  # the user pressed Stop: a complete (if short) answer
    ERROR = "error"


class BattleMode(StrEnum):
    """How a battle was set up; only anonymous battles count towards ratings."""

    ANONYMOUS = "anonymous"
    NAMED = "named"
    SELF_PLAY = "self_play"
    AUTO = "auto"  # an automatic battle (`python -m arena autobattle`): no person asked or voted, a judge did


@dataclass
class Reply:
    """One assistant answer with its timings."""

    text: str = ""
    status: ReplyStatus = ReplyStatus.STREAMING
    error: str | None = None  # the sentence shown to users
    ttft_ms: float | None = None
    total_ms: float | None = None
    tokens: int = 0


@dataclass(frozen=True)
class Voter:
    """Who is acting: a browser session and a salted hash of their IP (never the raw IP)."""

    session_id: str
    ip_hash: str | None = None


@dataclass(frozen=True)
class Contestant:
    """What is revealed about a model after the vote."""

    name: str
    description: str
    license: str


@dataclass
class BattleState:
    """A battle as the server holds it for one browser session; never sent to the browser."""

    models: dict[Side, str]
    session_id: str
    params: dict[Side, GenerationParams] = field(default_factory=dict)
    mode: BattleMode = BattleMode.ANONYMOUS
    battle_id: str | None = None
    histories: dict[Side, list[Message]] = field(default_factory=lambda: {Side.A: [], Side.B: []})
    turns: int = 0  # completed rounds
    replies: dict[Side, Reply] = field(default_factory=dict)  # the current round's
    streaming: bool = False
    errored: bool = False
    voted_turns: set[int] = field(default_factory=set)  # 0-based indices of judged rounds
    revealed: bool = False
    identity_leak: str | None = None  # the name or identity word an answer revealed
    language: str | None = None  # of the first question
    turn_language: str | None = None  # of the last question
    last_question: str = ""
    stop_requested: bool = False

    @property
    def answers_begun(self) -> int:
        """How many of the current round's answers have shown text (the page gets each one's first at once)."""
        return sum(1 for reply in self.replies.values() if reply.text)

    @property
    def anonymous(self) -> bool:
        """Whether the voter does not know the models (a named battle, or one already revealed, is not)."""
        return self.mode is not BattleMode.NAMED and not self.revealed

    @property
    def votable(self) -> bool:
        """Whether the last completed round can be voted on now."""
        return self.turns > 0 and not self.streaming and not self.errored and self.turns - 1 not in self.voted_turns

    @property
    def last_round_voted(self) -> bool:
        """Whether the last completed round has its vote already (its thanks and reveal stay on screen)."""
        return self.turns > 0 and self.turns - 1 in self.voted_turns

    @property
    def unmasked(self) -> bool:
        """Whether a blind battle's names were revealed by a vote: its later votes are stored as not anonymous."""
        return self.mode is not BattleMode.NAMED and self.revealed

    def repicked(self, model_a: object, model_b: object) -> bool:
        """Whether a named battle gives way to a new pick: only before its first question, and to another pair."""
        picked = (model_a, model_b)
        return (
            self.mode is BattleMode.NAMED and self.turns == 0 and (self.models[Side.A], self.models[Side.B]) != picked
        )


@dataclass
class ChatState:
    """A single-model conversation as the server holds it for one browser session."""

    model: str
    session_id: str
    conversation_id: str | None = None
    history: list[Message] = field(default_factory=list)
    turns: int = 0
    reply: Reply | None = None
    last_question: str = ""
    streaming: bool = False
    message_ids: dict[int, int] = field(default_factory=dict)  # turn index -> stored assistant message id
    stop_requested: bool = False

    @property
    def answers_begun(self) -> int:
        """1 once the current answer has shown text, else 0."""
        return int(self.reply is not None and bool(self.reply.text))

    def switches_to(self, model: object) -> bool:
        """Whether asking `model` leaves this conversation for a new one (the user picked another model)."""
        return self.model != model

    def rateable(self, number: int) -> bool:
        """Whether the n-th answer shown (1 = the first) is stored, so it can be rated (not streaming, not failed)."""
        return number <= len(self.message_ids)

    def answer_number(self, turn: int) -> int:
        """The position of a stored answer among those shown (1 = the first), as the user counts."""
        return sorted(self.message_ids).index(turn) + 1
