"""A slight preference, end to end: the buttons (only when configured), the stored vote, ratings, exports."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import gradio as gr
import pytest

from arena.battle import BattleService
from arena.config import AppConfig
from arena.domain import Outcome, Side, Voter
from arena.export.formats import Judges
from arena.export.formats.kto import labels
from arena.export.formats.lmsys import winner
from arena.export.run import EXPORT_FILTER, export
from arena.leaderboard import Leaderboard, build_leaderboard
from arena.ratings import pair_counts, score_of_a
from arena.store.repository import Repository
from arena.ui.battle import build_battle_tab
from arena.ui.battle_presenter import THANKS, BattlePresenter, Slot, vote_choices
from arena.ui.common import voter_factory
from tests.support.store_reads import StoreReads

VOTER = Voter(session_id="slight-1", ip_hash="iphash")


def test_the_buttons_appear_only_when_configured(demo_config: AppConfig) -> None:
    assert [o for o, _ in vote_choices()] == [Outcome.A, Outcome.B, Outcome.TIE, Outcome.BOTH_BAD]
    slight = vote_choices(slight=True)
    assert [label for _, label in slight] == [
        "A is better",
        "A is slightly better",
        "B is slightly better",
        "B is better",
        "Tie",
        "Both are bad",
    ]
    assert not demo_config.arena.slight_preferences  # off by default


def test_the_tab_binds_one_vote_endpoint_per_shown_button(battles: BattleService) -> None:
    with gr.Blocks() as page:
        build_battle_tab(battles, voter_factory(b"s" * 16), 4, named=False, slight=True)
    ids = sorted(
        str(b.elem_id) for b in page.blocks.values() if isinstance(b, gr.Button) and "-vote-" in str(b.elem_id)
    )
    assert ids == sorted(f"battle-vote-{o.value}" for o, _ in vote_choices(slight=True))
    names = {d.api_name for d in page.fns.values()}
    assert {"battle_vote_a_slightly", "battle_vote_b_slightly"} <= names


def test_a_slight_vote_is_stored_counted_as_three_quarters_and_exported(
    battles: BattleService, repo: Repository, stored: StoreReads, tmp_path: Path
) -> None:
    presenter = BattlePresenter(battles, named=False)
    slot = Slot()
    slot.battle = battles.new_battle(VOTER)
    slot.battle.models = {Side.A: "demo-lora-a", Side.B: "demo-lora-b"}

    async def play() -> None:
        async for _ in presenter.send(slot, "Bonjour !", VOTER):
            pass
        assert (await presenter.vote(slot, Outcome.A_SLIGHTLY, VOTER)).notice == THANKS

    asyncio.run(play())
    [vote] = stored.votes()
    assert vote.outcome is Outcome.A_SLIGHTLY
    assert repo.pair_outcomes() == [("demo-lora-a", "demo-lora-b", Outcome.A_SLIGHTLY, 1)]

    judges = Judges(b"slight-test-key-0123456")
    dpo, lmsys = tmp_path / "dpo.jsonl", tmp_path / "lmsys.jsonl"
    export(repo.engine, "dpo", dpo, EXPORT_FILTER, judges=judges)
    export(repo.engine, "lmsys", lmsys, EXPORT_FILTER, judges=judges)
    [pair] = [json.loads(line) for line in dpo.read_text().splitlines()]
    assert pair["model_chosen"] == "demo-lora-a" and pair["model_rejected"] == "demo-lora-b"
    [record] = [json.loads(line) for line in lmsys.read_text().splitlines()]
    assert record["winner"] == "model_a"


def test_ratings_and_labels_of_a_slight_preference() -> None:
    assert score_of_a(Outcome.A_SLIGHTLY) == 0.75 and score_of_a(Outcome.B_SLIGHTLY) == 0.25
    assert pair_counts([("x", "y", Outcome.A_SLIGHTLY), ("y", "x", Outcome.A_SLIGHTLY)]) == {
        ("x", "y"): (0.5, 0.5, 1.0)
    }
    assert labels(Outcome.B_SLIGHTLY) == (False, True) and winner(Outcome.B_SLIGHTLY) == "model_b"
    strong = build_leaderboard([("x", "y", Outcome.A, 40)], rounds=50)
    slight = build_leaderboard([("x", "y", Outcome.A_SLIGHTLY, 40)], rounds=50)

    def gap(board: Leaderboard) -> float:
        return (board.standings[0].rating or 0.0) - (board.standings[1].rating or 0.0)

    assert slight.standings[0].model == "x" and 0 < gap(slight) < gap(strong)
    assert slight.standings[0].win_rate == pytest.approx(0.75)  # x won 3/4 of its 40 votes
