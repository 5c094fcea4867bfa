"""A background judge reads each round a person voted on, after the vote: the vote is answered first, the judge's
reading is stored beside it (paired data), and a judge never reads a battle its own model fights in."""

from __future__ import annotations

import asyncio
import random

from sqlalchemy import text

from arena.background_judging import BackgroundJudging
from arena.battle import BattleService
from arena.config import AppConfig, JudgeConfig
from arena.domain import BattleState, Outcome, Side
from arena.judges import Judge
from arena.matchmaking import Matchmaker
from arena.store.facade import AsyncStore
from arena.store.repository import Repository
from backends.base import GenerationParams
from backends.local import LocalBackend
from tests.arena.test_battle import VOTER, guards

TINY = GenerationParams(max_new_tokens=4, do_sample=False)


def _service(
    config: AppConfig, backends: dict[str, LocalBackend], repo: Repository
) -> tuple[BattleService, BackgroundJudging]:
    store = AsyncStore(repo)
    judges = [
        Judge(JudgeConfig(name="bg", model="demo-base", generation=TINY, background=True), backends["demo-base"]),
        Judge(JudgeConfig(name="own", model="demo-lora-a", generation=TINY, background=True), backends["demo-lora-a"]),
    ]
    judging = BackgroundJudging(judges, store)
    service = BattleService(
        config=config,
        backends=backends,
        store=store,
        matchmaker=Matchmaker(config, random.Random(3), repo.pair_outcomes),
        guards=guards(config),
        judging=judging,
    )
    return service, judging


def test_a_voted_round_is_judged_afterwards_by_the_judges_allowed_to(
    demo_config: AppConfig, local_backends: dict[str, LocalBackend], repo: Repository
) -> None:
    service, judging = _service(demo_config, local_backends, repo)

    async def battle() -> None:
        state = BattleState(models={Side.A: "demo-lora-a", Side.B: "demo-lora-b"}, session_id=VOTER.session_id)
        async for _ in service.ask(state, "Salut !", VOTER):
            pass
        await service.vote(state, Outcome.A, VOTER)
        # the vote has returned: the person's round is done while the judge may still be reading
        with repo.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM votes WHERE voter = 'human'")).scalar() == 1
        await judging.drain()

    asyncio.run(battle())
    with repo.engine.connect() as conn:
        judged = conn.execute(text("SELECT judge, turn_index, first_text FROM judgements")).all()
    assert [(j.judge, j.turn_index) for j in judged] == [("bg", 0)]  # "own" judges demo-lora-a: it fights here
    assert judged[0].first_text  # the raw reading is kept
    assert judging.skipped == 0
