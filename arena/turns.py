"""What battles and chats share: who may act on a conversation, the guards, and running one turn's streams."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from arena.domain import Voter
from arena.errors import InputRejected, UserError
from arena.language import LanguageDetector
from arena.leaks import LeakDetector
from arena.limits import RateLimiter
from arena.replies import end_replies
from arena.rounds import LiveRound


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
            live.updated.set()
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
