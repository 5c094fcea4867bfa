"""The Export tab's self-play checkbox: laid out beside the other vote kinds, wired last, and passed into the filter."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import gradio as gr

from arena.domain import BattleMode, Outcome, Side, Voter
from arena.export.formats import Judges
from arena.export.service import ExportService
from arena.store.repository import Repository
from arena.ui.export import ExportForm, ExportPresenter, build_export_tab
from tests.arena.store.test_repository import ok
from tests.support.battles import store_round

TOKEN = "admin-token-0123456789"
VOTER = Voter("export-tab-1")


def vote(repo: Repository, battle: str, models: tuple[str, str], mode: BattleMode) -> None:
    """One voted round between `models`."""
    repo.create_battle(battle_id=battle, models={Side.A: models[0], Side.B: models[1]}, voter=VOTER, mode=mode)
    store_round(repo, battle, (ok(f"{battle} a"), ok(f"{battle} b")))
    repo.record_vote(battle_id=battle, turn_index=0, outcome=Outcome.A, anonymous=True, voter=VOTER)


def test_self_play_votes_go_out_only_when_the_box_is_ticked(repo: Repository, tmp_path: Path) -> None:
    vote(repo, "a" * 32, ("x", "y"), BattleMode.ANONYMOUS)
    vote(repo, "b" * 32, ("x", "x"), BattleMode.SELF_PLAY)
    presenter = ExportPresenter(ExportService(repo.engine, Judges(b"export-tab-key-0123456"), TOKEN, folder=tmp_path))

    def pairs(form: ExportForm) -> list[tuple[str, str]]:
        view = asyncio.run(presenter.run(TOKEN, "lmsys", ".jsonl", form))
        assert view.path is not None, view.status
        rows = [json.loads(line) for line in Path(view.path).read_text(encoding="utf-8").splitlines()]
        return [(row["model_a"], row["model_b"]) for row in rows]

    assert pairs(ExportForm()) == [("x", "y")]
    assert sorted(pairs(ExportForm(self_play=True))) == [("x", "x"), ("x", "y")]


def test_the_checkbox_sits_with_the_other_vote_kinds_and_is_the_last_input(repo: Repository, tmp_path: Path) -> None:
    with gr.Blocks() as ui:
        build_export_tab(ExportService(repo.engine, Judges(b"export-tab-key-0123456"), TOKEN, folder=tmp_path))
    boxes = {b.elem_id: b for b in ui.blocks.values() if isinstance(b, gr.Checkbox)}
    box = boxes["export-self-play"]
    assert box.label == "Include self-play battles (a model against itself)" and box.label.isascii()
    [row] = {id(b.parent): b.parent for b in boxes.values()}.values()  # one row: named, leaks, self-play, margin
    assert row is not None
    assert [c.elem_id for c in row.children] == ["export-named", "export-leaks", "export-self-play", "export-margin"]
    [export] = [fn for fn in ui.fns.values() if fn.api_name == "export"]
    # appended: scripts calling /export with the earlier fields only keep working (a missing checkbox is False)
    assert export.inputs[-1] is box
