"""An AI judge at work: its readings through a configured model's backend, with its own limits and timeouts."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from arena.config import JudgeConfig
from arena.judging import Judgement, JudgeTemplate, combine, load_template, parse_verdict, swapped_back
from backends.base import Backend, BackendError

log = logging.getLogger(__name__)


class Pace:
    """At most `per_minute` starts a minute (0: no limit), spaced evenly; shared by one judge's readings."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._gap = 60.0 / per_minute if per_minute else 0.0
        self._next = 0.0
        self._clock = clock
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        """Return when the next start is allowed."""
        if not self._gap:
            return
        async with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + self._gap
        if start > now:
            await asyncio.sleep(start - now)


class Judge:
    """One configured judge: the prompt, the swap, and its own concurrency, pace and timeout (separate from the
    contestants', so judging never queues a person's round behind it)."""

    def __init__(self, config: JudgeConfig, backend: Backend, template: JudgeTemplate | None = None) -> None:
        self.config = config
        self._backend = backend
        self._template = template or load_template(config.template)
        self._slots = asyncio.Semaphore(config.concurrency)
        self._pace = Pace(config.per_minute)

    @property
    def name(self) -> str:
        """The judge's configured name."""
        return self.config.name

    def may_judge(self, models: set[str]) -> bool:
        """Whether it may judge a battle between `models` (not one its own model fights in, unless allowed)."""
        return self.config.may_judge_contestants or self.config.model not in models

    async def judge(self, question: str, answer_a: str, answer_b: str, reference: str | None = None) -> Judgement:
        """Read the round (twice, the answers swapped, with `swap`) and combine the verdicts."""
        start = time.perf_counter()
        orders = [(answer_a, answer_b), *([(answer_b, answer_a)] if self.config.swap else [])]
        # both orders at once (the judge's own slots still bound how many readings run)
        readings = await asyncio.gather(*(self._read(question, *shown, reference) for shown in orders))
        (first_text, first_error), *swapped = readings
        first = parse_verdict(first_text)
        second_text, second_error = swapped[0] if swapped else (None, None)
        second = None if second_text is None else swapped_back(parse_verdict(second_text))
        return Judgement(
            judge=self.name,
            verdict=combine(first, second),
            first=first,
            second=second,
            first_text=first_text,
            second_text=second_text,
            ms=(time.perf_counter() - start) * 1000,
            error=first_error or second_error,
        )

    async def _read(self, question: str, shown_a: str, shown_b: str, reference: str | None) -> tuple[str, str | None]:
        """One reading's text, or "" and why there is none."""
        messages = self._template.messages(question, shown_a, shown_b, reference)
        await self._pace.wait()  # before a slot is taken: a paced reading does not hold one while it waits
        async with self._slots:
            parts: list[str] = []
            try:
                async with asyncio.timeout(self.config.timeout_s):
                    async for chunk in self._backend.stream(messages, self.config.generation):
                        parts.append(chunk.text)
            except TimeoutError:
                return "".join(parts), f"the judge did not finish within {self.config.timeout_s:g} s"
            except BackendError as exc:
                log.warning("judge %s failed: %s: %s", self.name, type(exc).__name__, exc)
                return "".join(parts), exc.user_message
            except Exception:
                log.exception("judge %s failed unexpectedly", self.name)
                return "".join(parts), "the judge failed unexpectedly"
        return "".join(parts), None
