"""What battles and chats share: who may act on a conversation, the guards, and running one turn's streams."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from arena.config import AppConfig
from arena.domain import Voter
from arena.errors import InputRejected, UserError
from arena.language import LanguageDetector
from arena.leaks import LeakDetector
from arena.limits import RateLimiter
from arena.replies import end_replies
from arena.rounds import LiveRound, Rounds, RoundState
from arena.store.facade import AsyncStore
from backends.base import Backend

S = TypeVar("S", bound=RoundState)


@dataclass(frozen=True)
class Guards:
    """What protects the arena from strangers and from models that name themselves."""

    leaks: LeakDetector
    limiter: RateLimiter
    language: LanguageDetector


class Owned(Protocol):
    """A conversation held for one browser session."""

    session_id: str


def voter_keys(voter: Voter) -> list[str]:
    """Rate-limit keys of a voter: the browser session and the (hashed) IP."""
    return [f"session:{voter.session_id}", *([f"ip:{voter.ip_hash}"] if voter.ip_hash else [])]


def require_owner(state: Owned | None, voter: Voter, sentence: str, refusal: type[UserError] = InputRejected) -> None:
    """Refuse, with `sentence`, anyone but the session the conversation belongs to (or an absent conversation)."""
    if state is None or state.session_id != voter.session_id:
        raise refusal(sentence)


def prepare_failed(prepared: asyncio.Task[Any] | None) -> bool:
    """Whether the task storing a new battle or conversation failed (its turn then ends at once)."""
    if prepared is None or not prepared.done():
        return False
    return prepared.cancelled() or prepared.exception() is not None


@dataclass(frozen=True)
class TurnSteps:
    """What one kind of conversation does while its streams run and when they end."""

    stopped: Callable[[], bool]  # Stop was asked
    on_change: Callable[[], None]  # after every change, before the page is told
    finish: Callable[[], Awaitable[None]]  # store the turn (the conversation row exists)
    take_back: Callable[[], None]  # the conversation could not be stored: forget the question


async def run_streams(
    live: LiveRound, tasks: Sequence[asyncio.Task[None]], prepared: asyncio.Task[Any] | None, steps: TurnSteps
) -> None:
    """Relay the streams' progress until they end, Stop is asked or storing the conversation failed; then end
    them, wait for the conversation row, and store the turn (or take the question back if there is no row)."""
    if prepared is not None:
        prepared.add_done_callback(lambda _: live.changed.set())
    try:
        while not (steps.stopped() or all(t.done() for t in tasks) or prepare_failed(prepared)):
            await live.changed.wait()
            live.changed.clear()
            steps.on_change()
            live.news()
    finally:
        try:
            await end_replies(list(tasks))
            if prepared is not None:
                await asyncio.wait({prepared})
        finally:
            if prepared is None or (prepared.done() and not prepare_failed(prepared)):
                await steps.finish()
            else:
                steps.take_back()


class TurnService(Generic[S]):
    """The part of the battle and chat services that runs turns: each in a task of its own (arena.rounds), ended
    by Stop from any thread, and relayed to the page as snapshots of the state."""

    def __init__(
        self,
        *,
        config: AppConfig,
        backends: Mapping[str, Backend],
        store: AsyncStore,
        guards: Guards,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self._config = config
        self._backends = backends
        self._store = store
        self._guards = guards
        self._new_id = new_id  # the ids of new battles or conversations
        self._rounds = Rounds()

    def stop(self, state: S | None) -> None:
        """End the running turn now (its answers stopped, stored and votable or rateable); safe from any thread."""
        self._rounds.stop(state)

    async def wait_until_stored(self, state: S | None) -> None:
        """Wait until the running turn of `state`, if any, has ended and is stored (bound it by a timeout)."""
        await self._rounds.wait_until_stored(state)

    def _run(self, state: S, run: Callable[[LiveRound], Awaitable[None]]) -> AsyncGenerator[S, None]:
        """The turn `run` in a task of its own, its progress relayed as snapshots."""
        return self._rounds.run(state, run)
