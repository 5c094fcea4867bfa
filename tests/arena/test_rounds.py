"""The page's relay of a round: updates coalesced, each answer's first text at once, slower under load."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Coroutine
from typing import Any

from arena.rounds import MAX_INTERVAL_S, UPDATE_INTERVAL_S, LiveRound, LoopLag, relay


def test_the_update_interval_grows_with_the_loops_lag_within_bounds() -> None:
    lag = LoopLag()
    assert lag.interval() == UPDATE_INTERVAL_S  # an idle loop: the base interval
    lag.lag = 0.05
    assert lag.interval() == 0.2  # four times the lag
    lag.lag = 5.0
    assert lag.interval() == MAX_INTERVAL_S


def test_the_lag_probe_measures_a_blocked_loop() -> None:
    async def run() -> float:
        lag = LoopLag()
        lag.watch()
        await asyncio.sleep(0.06)
        for _ in range(3):
            time.sleep(0.1)  # noqa: ASYNC251  (the point: the loop blocked, as by a burst of work)
            await asyncio.sleep(0.06)
        return lag.lag

    assert asyncio.run(run()) > 0.01  # an idle loop measures well under a millisecond


def relayed(
    steps: Callable[[LiveRound], Coroutine[Any, Any, None]], *, begun: Callable[[], int], shown: int, interval: float
) -> tuple[list[tuple[float, int]], float]:
    """Run a round whose task is `steps(live)` through the relay: each update's time and how many answers it
    showed, and when the relay ended (seconds from the start)."""
    sent: list[tuple[float, int]] = []

    async def run() -> float:
        loop = asyncio.get_running_loop()
        live = LiveRound(loop, begun=begun, shown=shown)
        live.task = loop.create_task(steps(live))
        start = loop.time()
        async for _ in relay(live, lambda: None, interval=lambda: interval):
            sent.append((loop.time() - start, live.shown))
        return loop.time() - start

    ended = asyncio.run(run())
    return sent, ended


def test_an_answers_first_text_goes_out_at_once_and_the_rest_is_coalesced() -> None:
    # a long interval (1 s) against a round of about 0.35 s: only the urgent updates and the end may go out, so
    # the bounds below hold on a slow, loaded machine too
    begun = [0]

    async def round_(live: LiveRound) -> None:  # answer A starts, streams fast; answer B starts 50 ms later
        begun[0] = 1
        live.news()
        for _ in range(5):
            await asyncio.sleep(0.01)
            live.news()
        begun[0] = 2
        live.news()
        for _ in range(30):
            await asyncio.sleep(0.01)
            live.news()

    sent, ended = relayed(round_, begun=lambda: begun[0], shown=0, interval=1.0)
    assert [shown for _, shown in sent] == [1, 2]  # A's first words, B's first words, and nothing else coalesced
    assert sent[1][0] < 0.6  # B's first words did not wait for the 1 s interval after A's
    assert ended < 0.9  # the round's end is not held back by the interval either


def test_without_news_of_a_first_answer_updates_wait_for_the_interval() -> None:
    async def round_(live: LiveRound) -> None:
        for _ in range(60):
            await asyncio.sleep(0.01)
            live.news()

    # the answer's first text is on the page already
    sent, _ = relayed(round_, begun=lambda: 1, shown=1, interval=0.25)
    gaps = [b - a for (a, _), (b, _) in itertools.pairwise(sent)]
    assert 1 <= len(sent) <= 4 and all(gap >= 0.24 for gap in gaps)  # 60 changes, a handful of updates
