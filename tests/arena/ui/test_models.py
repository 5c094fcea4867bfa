"""The Models tab: its presenter over the real config and the battle service's availability, and its layout."""

from __future__ import annotations

import gradio as gr

from arena.battle import BattleService
from arena.config import AppConfig
from arena.ui.models import COLUMNS, ModelRow, ModelsPresenter, build_models_tab


def test_every_configured_model_is_listed_in_config_order_with_its_notes(demo_config: AppConfig) -> None:
    presenter = ModelsPresenter(demo_config, lambda: ["demo-lora-a"])
    rows = presenter.rows()
    assert [r.name for r in rows] == [m.name for m in demo_config.models]
    assert rows[0] == ModelRow("demo-base", "the base", "demo licence", "tokenizer", available=False)
    assert [r.available for r in rows] == [m.name == "demo-lora-a" for m in demo_config.models]
    view = presenter.view()
    assert view.summary == f"**1 of {len(rows)}** models can answer now."
    assert view.rows[0] == ["demo-base", "the base", "demo licence", "tokenizer", "no"]
    assert all(len(row) == len(COLUMNS) for row in view.rows)


def test_availability_is_the_battle_services_now(demo_config: AppConfig, battles: BattleService) -> None:
    view = ModelsPresenter(demo_config, battles.available).view()
    assert {row[0]: row[-1] for row in view.rows} == {m.name: "yes" for m in demo_config.models}


def test_the_table_is_filled_when_the_tab_opens_not_with_the_page(demo_config: AppConfig) -> None:
    with gr.Blocks() as blocks, gr.Tab("Models") as tab:
        build_models_tab(demo_config, lambda: [], 4, tab)
    tables = [b for b in blocks.blocks.values() if isinstance(b, gr.Dataframe)]
    [table] = tables
    assert table.headers == COLUMNS
    assert "the base" not in str(blocks.get_config_file()), "the notes reach the browser only when the tab is opened"
    private = [fn for fn in blocks.fns.values() if fn.api_visibility == "private"]
    assert len(private) == 2 and all(fn.concurrency_limit == 4 for fn in private)
