"""The page's relay of a round: updates coalesced, each answer's first text at once, slower under load."""

from __future__ import annotations

import asyncio
import itertools
import time

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


def test_an_answers_first_text_goes_out_at_once_and_the_rest_is_coalesced() -> None:
    # a long interval (1 s) against a round of about 0.35 s: only the urgent updates and the end may go out, so
    # the bounds below hold on a slow, loaded machine too
    begun = [0]
    sent: list[tuple[float, int]] = []

    async def run() -> float:
        loop = asyncio.get_running_loop()
        live = LiveRound(loop, begun=lambda: begun[0])

        async def round_() -> None:  # answer A starts, streams fast; answer B starts 50 ms later
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

        live.task = loop.create_task(round_())
        start = loop.time()
        async for _ in relay(live, lambda: None, interval=lambda: 1.0):
            sent.append((loop.time() - start, live.shown))
        return loop.time() - start

    ended = asyncio.run(run())
    assert [shown for _, shown in sent] == [1, 2]  # A's first words, B's first words, and nothing else coalesced
    assert sent[1][0] < 0.6  # B's first words did not wait for the 1 s interval after A's
    assert ended < 0.9  # the round's end is not held back by the interval either


def test_without_news_of_a_first_answer_updates_wait_for_the_interval() -> None:
    sent: list[float] = []

    async def run() -> None:
        loop = asyncio.get_running_loop()
        live = LiveRound(loop, begun=lambda: 1)
        live.shown = 1  # the answer's first text is on the page already

        async def round_() -> None:
            for _ in range(60):
                await asyncio.sleep(0.01)
                live.news()

        live.task = loop.create_task(round_())
        start = loop.time()
        async for _ in relay(live, lambda: None, interval=lambda: 0.25):
            sent.append(loop.time() - start)

    asyncio.run(run())
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert 1 <= len(sent) <= 4 and all(gap >= 0.24 for gap in gaps)  # 60 changes, a handful of updates
