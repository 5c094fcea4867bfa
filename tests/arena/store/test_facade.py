"""The async store facade: values come back, rule errors pass through, driver failures become StoreUnavailable."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from arena.domain import Outcome, Side, Voter
from arena.store.errors import DuplicateVote, StoreUnavailable
from arena.store.facade import AsyncStore
from arena.store.repository import Repository
from arena.store.retry import RetryPolicy
from tests.arena.store.test_repository import VOTER, battle_with_turn

FAST = RetryPolicy(attempts=2, first_delay=0.0)


def test_a_write_returns_its_value_and_rule_errors_pass_through(repo: Repository) -> None:
    store = AsyncStore(repo, retry=FAST)
    battle = battle_with_turn(repo)

    def vote(r: Repository) -> None:
        r.record_vote(battle_id=battle, turn_index=0, outcome=Outcome.A, anonymous=True, voter=VOTER)

    async def scenario() -> None:
        await store.write("a vote", vote)
        with pytest.raises(DuplicateVote):
            await store.write("a vote", vote)
        stored = await store.read("a vote", lambda r: r.round_vote(battle, 0))
        assert stored is not None and stored.outcome is Outcome.A

    asyncio.run(scenario())


def test_a_database_that_cannot_be_opened_is_store_unavailable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "no-such-folder" / "corral.db"  # SQLite cannot create a file in a missing folder
    store = AsyncStore(Repository(create_engine(f"sqlite:///{missing}")), retry=FAST)
    models = {Side.A: "x", Side.B: "y"}

    async def scenario() -> None:
        with pytest.raises(StoreUnavailable, match="could not store a new battle: unable to open database file"):
            await store.write("a new battle", lambda r: r.create_battle(battle_id="b", models=models, voter=Voter("s")))
        with pytest.raises(StoreUnavailable, match="could not read a vote"):
            await store.read("a vote", lambda r: r.round_vote("b", 0))

    asyncio.run(scenario())
    assert "could not store a new battle after 2 attempts" in caplog.text  # retried, then given up, in the log
