"""The Models tab: every configured contestant with its notes, licence, prompt template and whether it answers now.

Model names are public already (the Side-by-side and Chat tabs list them); which model sits in which pane of a
blind battle is not, and this tab says nothing about that. The table is filled when the tab is opened, not with
the page, so the notes and licences reach a browser only when its user asks for them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import gradio as gr

from arena.config import AppConfig

COLUMNS = ["Model", "Description", "License", "Prompt template", "Available now"]
EXPLAIN = (
    "Every model in this arena. Blind battles draw their two models from those available now, and the names "
    "are revealed only after your vote. The *Side by side* and *Chat* tabs let you pick a model by name."
)


@dataclass(frozen=True)
class ModelRow:
    """One contestant as the tab lists it."""

    name: str
    description: str
    license: str
    template: str
    available: bool

    def cells(self) -> list[str]:
        """The row's table cells, in COLUMNS order."""
        return [self.name, self.description, self.license, self.template, "yes" if self.available else "no"]


@dataclass(frozen=True)
class ModelsView:
    """The Models tab's content: a one-line summary and the table rows."""

    summary: str
    rows: list[list[str]]


class ModelsPresenter:
    """Lists the configured contestants; `available` names the models that can answer now."""

    def __init__(self, config: AppConfig, available: Callable[[], Collection[str]]) -> None:
        self._config = config
        self._available = available

    def rows(self) -> list[ModelRow]:
        """Every configured model, in config order."""
        up = set(self._available())
        return [ModelRow(m.name, m.description, m.license, m.template, m.name in up) for m in self._config.models]

    def view(self) -> ModelsView:
        """The summary line and the table as they stand now."""
        rows = self.rows()
        ready = sum(r.available for r in rows)
        summary = f"**{ready} of {len(rows)}** models can answer now."
        return ModelsView(summary, [r.cells() for r in rows])


def build_models_tab(
    config: AppConfig, available: Callable[[], Collection[str]], concurrency_limit: int, tab: gr.Tab
) -> None:
    """Lay out the Models tab and fill it whenever it is opened or refreshed (inside an open gr.Blocks)."""
    presenter = ModelsPresenter(config, available)
    gr.Markdown(EXPLAIN)
    with gr.Row():
        summary = gr.Markdown(elem_id="models-summary")
        refresh = gr.Button("Refresh", size="sm", scale=0, min_width=120, elem_id="models-refresh")
    # fixed shares of the width, long notes wrapped: every column, "Available now" too, fits without scrolling
    table = gr.Dataframe(
        headers=COLUMNS,
        interactive=False,
        wrap=True,
        column_widths=["16%", "32%", "28%", "12%", "12%"],
        elem_id="models-table",
    )

    def show_models() -> tuple[Any, ...]:
        view = presenter.view()
        return view.summary, view.rows

    # read-only and cheap; browser-only (not a public endpoint): the list is the page's, not an API
    common: dict[str, Any] = {"concurrency_limit": concurrency_limit, "concurrency_id": "models"}
    tab.select(show_models, None, [summary, table], api_visibility="private", **common)
    refresh.click(show_models, None, [summary, table], api_visibility="private", **common)
