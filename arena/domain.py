"""Plain data the arena passes around: sides, outcomes, replies and the live state of a battle."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from backends.base import Message


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


class ReplyStatus(StrEnum):
    """How a reply ended."""

    STREAMING = "streaming"
    OK = "ok"
    ERROR = "error"


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
    anonymous: bool = True
    battle_id: str | None = None
    histories: dict[Side, list[Message]] = field(default_factory=lambda: {Side.A: [], Side.B: []})
    turns: int = 0  # completed rounds
    replies: dict[Side, Reply] = field(default_factory=dict)  # the current round's
    streaming: bool = False
    errored: bool = False
    voted_turns: set[int] = field(default_factory=set)  # 0-based indices of judged rounds
    revealed: bool = False

    @property
    def votable(self) -> bool:
        """Whether the last completed round can be voted on now."""
        return self.turns > 0 and not self.streaming and not self.errored and self.turns - 1 not in self.voted_turns


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
