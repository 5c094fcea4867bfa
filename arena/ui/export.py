"""The Export tab, for admins only: it exists only when CORRAL_ADMIN_TOKEN is set, and every export asks for it."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from typing import Any

import gradio as gr

from arena.errors import UserError
from arena.export import formats
from arena.export.formats import FORMATS
from arena.export.run import EXPORT_FILTER
from arena.export.service import ExportService, parse_day
from arena.export.writers import SUFFIXES
from arena.ui.common import warn

log = logging.getLogger(__name__)

EXPLAIN = (
    "Download the votes as training data. "
    + "; ".join(f"**{name}**: {fmt.explain}" for name, fmt in FORMATS.items())
    + ". Only anonymous votes with no identity leak, outside self-play, go out unless you tick the boxes. "
    "Voter ids are anonymised."
)


@dataclass(frozen=True)
class ExportView:
    """What one export shows: the file to download (or None), the status text, and a warning to toast."""

    path: str | None
    status: str
    warning: str | None = None


@dataclass(frozen=True)
class ExportForm:
    """The export form's filter fields, as the browser sent them."""

    first: object = None
    last: object = None
    languages: object = None
    named: object = False
    leaks: object = False
    margin: object = False
    self_play: object = False  # last: scripts calling /export with the earlier fields only keep working


class ExportPresenter:
    """Runs one export from the form's values; plain values, tested without a browser."""

    def __init__(self, service: ExportService) -> None:
        self._service = service

    async def run(self, token: object, fmt: object, suffix: object, form: ExportForm) -> ExportView:
        """Export with the token, format, file type and filters as typed; a refusal is a sentence."""
        try:
            filters = replace(
                EXPORT_FILTER,
                since=parse_day(str(form.first or ""), "The first day"),
                until=parse_day(str(form.last or ""), "The last day"),
                languages=tuple(x.strip() for x in str(form.languages or "").split(",") if x.strip()) or None,
                include_named=bool(form.named),
                include_leaks=bool(form.leaks),
                include_self_play=bool(form.self_play),
            )
            summary = await asyncio.to_thread(
                self._service.run, str(token or ""), str(fmt), str(suffix), filters, margin=bool(form.margin)
            )
        except UserError as exc:
            return ExportView(None, str(exc), warning=str(exc))
        except Exception:
            log.exception("export failed")
            return ExportView(None, "The export failed; the server log has the details.")
        return ExportView(str(summary.path), "\n".join(f"- {line}" for line in summary.lines(with_path=False)))


def build_export_tab(service: ExportService) -> None:
    """Lay out the Export tab and wire its one event (inside an open gr.Blocks)."""
    presenter = ExportPresenter(service)
    gr.Markdown(EXPLAIN)
    token = gr.Textbox(label="Admin token", type="password", elem_id="export-token")
    with gr.Row():
        fmt = gr.Dropdown(list(FORMATS), value="dpo", label="Format", elem_id="export-format")
        suffix = gr.Radio(list(SUFFIXES), value=".jsonl", label="File type", elem_id="export-suffix")
    with gr.Row():
        since = gr.Textbox(label="First day (YYYY-MM-DD, optional)", elem_id="export-since")
        until = gr.Textbox(label="Day after the last (YYYY-MM-DD, optional)", elem_id="export-until")
        languages = gr.Textbox(label="Languages (comma-separated names, optional)", elem_id="export-languages")
    with gr.Row():
        named = gr.Checkbox(label="Include votes cast with names visible", elem_id="export-named")
        leaks = gr.Checkbox(label="Include votes where an answer named a model", elem_id="export-leaks")
        self_play = gr.Checkbox(label="Include self-play battles (a model against itself)", elem_id="export-self-play")
        margin = gr.Checkbox(label=f"{formats.with_margin()}: margin column from the ratings", elem_id="export-margin")
    button = gr.Button("Export", variant="primary", elem_id="export-run")
    status = gr.Markdown(elem_id="export-status")
    file = gr.File(label="Export", interactive=False, elem_id="export-file")

    async def run(key: Any, chosen: Any, kind: Any, *form: Any) -> tuple[Any, str]:
        view = await presenter.run(key, chosen, kind, ExportForm(*form))
        warn(view.warning)
        return view.path, view.status

    button.click(
        run,
        [token, fmt, suffix, since, until, languages, named, leaks, margin, self_play],
        [file, status],
        api_name="export",
        concurrency_limit=1,
        concurrency_id="export",
    )
