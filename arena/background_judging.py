"""AI judges reading the rounds people voted on, after the vote, in the background: paired data for agreement.

A person's round never waits for a judge: the vote is stored and answered first, then each configured background
judge gets the round as a task of its own, paced by the judge's own limits. When too many readings are pending the
newest rounds are left unjudged (and counted), rather than queued without bound.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence

from arena.domain import Side
from arena.judges import Judge
from arena.store.errors import DuplicateVote, StoreUnavailable, UnknownBattle
from arena.store.facade import AsyncStore

log = logging.getLogger(__name__)


class BackgroundJudging:
    """Hands voted rounds to the background judges (the configured judges with `background: true`)."""

    def __init__(self, judges: Sequence[Judge], store: AsyncStore, *, pending_limit: int = 64) -> None:
        self._judges = list(judges)
        self._store = store
        self._limit = pending_limit
        self._tasks: set[asyncio.Task[None]] = set()
        self.skipped = 0  # rounds left unjudged because too many readings were pending

    def __bool__(self) -> bool:
        return bool(self._judges)

    def submit(
        self, battle_id: str, turn_index: int, question: str, answers: Mapping[Side, str], models: set[str]
    ) -> None:
        """Start each judge that may judge these models on this round; returns at once."""
        for judge in self._judges:
            if not judge.may_judge(models):
                continue
            if len(self._tasks) >= self._limit:
                self.skipped += 1
                log.warning(
                    "judge %s left round %s/%d unjudged: %d readings pending",
                    judge.name,
                    battle_id,
                    turn_index,
                    self._limit,
                )
                continue
            task = asyncio.create_task(self._judge(judge, battle_id, turn_index, question, answers))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _judge(
        self, judge: Judge, battle_id: str, turn_index: int, question: str, answers: Mapping[Side, str]
    ) -> None:
        try:
            judgement = await judge.judge(question, answers[Side.A], answers[Side.B])
            if judgement.error is not None:  # a failed reading is no reading: nothing is stored
                log.warning(
                    "judge %s could not read round %s/%d: %s", judge.name, battle_id, turn_index, judgement.error
                )
                return
            await self._store.write(
                "a judgement",
                lambda repo: repo.record_judgement(battle_id=battle_id, turn_index=turn_index, judgement=judgement),
            )
        except (DuplicateVote, UnknownBattle, StoreUnavailable) as exc:
            log.warning("judge %s: round %s/%d not stored: %s", judge.name, battle_id, turn_index, type(exc).__name__)
        except Exception:
            log.exception("judge %s failed on round %s/%d", judge.name, battle_id, turn_index)

    async def drain(self) -> None:
        """Wait for the readings in progress (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
