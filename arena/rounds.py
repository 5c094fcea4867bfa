"""Rounds that run in tasks the services own: a round ends and is stored whatever happens to the page's event.

A Gradio event only relays snapshots of a round; Stop (called from one of Gradio's worker threads) wakes the
round's task thread-safely, and the task ends the replies, stores the round and tells the relay it is over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

log = logging.getLogger(__name__)
# At most one page update per round every 40 ms: each Gradio update costs milliseconds of CPU, and a backend can
# send tokens faster than that (the first token still goes out at once).
UPDATE_INTERVAL_S = 0.04


class RoundState(Protocol):
    """What a round's state shows of itself: whether it is streaming, and whether Stop was asked."""

    streaming: bool
    stop_requested: bool


S = TypeVar("S", bound=RoundState)


@dataclass
class LiveRound:
    """One running round: the loop it runs on, what wakes its task, what wakes the page's relay."""

    loop: asyncio.AbstractEventLoop
    changed: asyncio.Event = field(default_factory=asyncio.Event)  # a reply grew, ended, or Stop was asked
    updated: asyncio.Event = field(default_factory=asyncio.Event)  # the round has news for the page
    task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Wake the round's task; safe from any thread."""
        with contextlib.suppress(RuntimeError):  # a closed loop: the round ended with it
            self.loop.call_soon_threadsafe(self.changed.set)


class Rounds:
    """The rounds a service is running, keyed by the state object each one fills (one round per state at a time)."""

    def __init__(self) -> None:
        # Holds each live round (and so its task: asyncio keeps only weak references) until the round has ended.
        self._live: dict[int, LiveRound] = {}

    def start(self, key: object, run: Callable[[LiveRound], Awaitable[None]]) -> LiveRound:
        """Run `run(live)` in a task of its own on the running loop; `run` must end the round in its `finally`."""
        loop = asyncio.get_running_loop()
        live = LiveRound(loop)

        async def body() -> None:
            try:
                await run(live)
            except asyncio.CancelledError:  # the loop is shutting down; `run` stored what it could
                raise
            except Exception:
                log.exception("a round failed")
            finally:
                self._live.pop(id(key), None)
                live.updated.set()

        self._live[id(key)] = live
        live.task = loop.create_task(body(), name="round")
        return live

    def wake(self, key: object) -> None:
        """Wake the live round of `key`, if any; safe from any thread."""
        live = self._live.get(id(key))
        if live is not None:
            live.wake()

    def stop(self, state: RoundState | None) -> None:
        """End the running round of `state` now (its replies stopped, the round stored); safe from any thread."""
        if state is not None and state.streaming:
            state.stop_requested = True
            self.wake(state)

    async def wait_until_stored(self, state: RoundState | None) -> None:
        """Wait until the running round of `state`, if any, has ended and is stored (bound it by a timeout)."""
        loop = asyncio.get_running_loop()
        while state is not None and state.streaming:
            live = self._live.get(id(state))
            if live is not None and live.task is not None and live.loop is loop:
                await asyncio.wait({live.task})
            else:  # not started yet (the question is still being checked), or running on another loop
                await asyncio.sleep(0.02)

    async def run(self, state: S, run: Callable[[LiveRound], Awaitable[None]]) -> AsyncGenerator[S, None]:
        """Run a round of `state` in a task of its own and relay its progress as `state` snapshots.

        The round ends and is stored even when this generator is abandoned (Gradio cancelled the event between two
        updates) or closed (Stop, page closed).
        """
        live = self.start(state, run)
        async with contextlib.aclosing(relay(live, lambda: self.stop(state), interval=UPDATE_INTERVAL_S)) as news:
            async for _ in news:
                yield state
        yield state


async def relay(live: LiveRound, stop: Callable[[], None], *, interval: float) -> AsyncGenerator[None, None]:
    """Yield each time the round has news, at most once per `interval` (the first at once), until it has ended.

    Closing or cancelling the relay (Stop, or the page closed) stops the round and waits until it is stored.
    """
    assert live.task is not None
    task = live.task
    loop = asyncio.get_running_loop()
    last = -interval
    try:
        while True:
            await live.updated.wait()
            wait = last + interval - loop.time()
            if wait > 0 and not task.done():  # news that arrives meanwhile goes out in this one update
                await asyncio.sleep(wait)
            live.updated.clear()
            if task.done():
                return
            last = loop.time()
            yield
    except (asyncio.CancelledError, GeneratorExit):
        stop()
        await asyncio.wait({task})  # shielded: the round stores itself even if this wait is cancelled again
        raise
