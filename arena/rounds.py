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
# send tokens faster than that. Each answer's first text still goes out at once.
UPDATE_INTERVAL_S = 0.04
# When the process is busy the interval grows with the event loop's lag (LAG_FACTOR times the lag, up to
# MAX_INTERVAL_S): load lowers the update rate, which is what costs CPU, before it delays first words.
LAG_FACTOR = 4.0
MAX_INTERVAL_S = 0.5
LAG_PROBE_S = 0.05  # how often the lag is sampled


class RoundState(Protocol):
    """What a round's state shows of itself: whether it is streaming, whether Stop was asked, and how many of its
    answers have shown text."""

    streaming: bool
    stop_requested: bool

    @property
    def answers_begun(self) -> int:
        """How many of the current round's answers have shown text."""
        ...


class LoopLag:
    """How late an event loop runs its callbacks (smoothed, in seconds): a probe task sleeps LAG_PROBE_S and
    measures how much longer it took."""

    def __init__(self) -> None:
        self.lag = 0.0
        self._task: asyncio.Task[None] | None = None

    def watch(self) -> None:
        """Start probing the running loop, once."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._probe(), name="loop-lag")

    async def _probe(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(LAG_PROBE_S)
            self.lag = 0.7 * self.lag + 0.3 * max(0.0, loop.time() - start - LAG_PROBE_S)

    def interval(self) -> float:
        """The update interval for the lag measured now."""
        return min(MAX_INTERVAL_S, max(UPDATE_INTERVAL_S, LAG_FACTOR * self.lag))


S = TypeVar("S", bound=RoundState)


@dataclass
class LiveRound:
    """One running round: the loop it runs on, what wakes its task, what wakes the page's relay."""

    loop: asyncio.AbstractEventLoop
    changed: asyncio.Event = field(default_factory=asyncio.Event)  # a reply grew, ended, or Stop was asked
    updated: asyncio.Event = field(default_factory=asyncio.Event)  # the round has news for the page
    urgent: asyncio.Event = field(default_factory=asyncio.Event)  # an answer showed its first text
    begun: Callable[[], int] = lambda: 0  # how many answers have shown text
    shown: int = 0  # how many of those the page has been sent
    task: asyncio.Task[None] | None = None

    def news(self) -> None:
        """Tell the page's relay the round changed (at once when an answer has just shown its first text)."""
        self.updated.set()
        if self.begun() > self.shown:
            self.urgent.set()

    def wake(self) -> None:
        """Wake the round's task; safe from any thread."""
        with contextlib.suppress(RuntimeError):  # a closed loop: the round ended with it
            self.loop.call_soon_threadsafe(self.changed.set)


class Rounds:
    """The rounds a service is running, keyed by the state object each one fills (one round per state at a time)."""

    def __init__(self) -> None:
        # Holds each live round (and so its task: asyncio keeps only weak references) until the round has ended.
        self._live: dict[int, LiveRound] = {}
        self._lags: dict[asyncio.AbstractEventLoop, LoopLag] = {}

    def start(
        self, key: object, run: Callable[[LiveRound], Awaitable[None]], begun: Callable[[], int] = lambda: 0
    ) -> LiveRound:
        """Run `run(live)` in a task of its own on the running loop; `run` must end the round in its `finally`."""
        loop = asyncio.get_running_loop()
        live = LiveRound(loop, begun=begun)

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
        live = self.start(state, run, begun=lambda: state.answers_begun)
        lag = self._lags.setdefault(live.loop, LoopLag())
        lag.watch()
        async with contextlib.aclosing(relay(live, lambda: self.stop(state), interval=lag.interval)) as news:
            async for _ in news:
                yield state
        yield state


async def relay(
    live: LiveRound, stop: Callable[[], None], *, interval: Callable[[], float]
) -> AsyncGenerator[None, None]:
    """Yield each time the round has news, at most once per `interval()` (an answer's first text at once), until
    the round has ended.

    Closing or cancelling the relay (Stop, or the page closed) stops the round and waits until it is stored.
    """
    assert live.task is not None
    task = live.task
    loop = asyncio.get_running_loop()
    last = -MAX_INTERVAL_S
    try:
        while True:
            await live.updated.wait()
            wait = last + interval() - loop.time()
            if wait > 0 and not task.done() and not live.urgent.is_set():  # news meanwhile goes in this update
                await _first_of(live.urgent, task, seconds=wait)  # the round's end is not held back either
            live.shown = live.begun()
            live.urgent.clear()
            live.updated.clear()
            if task.done():
                return
            last = loop.time()
            yield
    except (asyncio.CancelledError, GeneratorExit):
        stop()
        await asyncio.wait({task})  # shielded: the round stores itself even if this wait is cancelled again
        raise


async def _first_of(event: asyncio.Event, task: asyncio.Task[None], *, seconds: float) -> None:
    """Wait until `event` is set, `task` has ended or `seconds` have passed, whichever comes first."""
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait((waiter, task), timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
