"""The Export tab, for admins only: it exists only when CORRAL_ADMIN_TOKEN is set, and every export asks for it."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Any

import gradio as gr

from arena.errors import UserError
from arena.export import formats
from arena.export.formats import FORMATS
from arena.export.run import EXPORT_FILTER
from arena.export.service import ExportService, parse_day

log = logging.getLogger(__name__)

EXPLAIN = (
    "Download the votes as training data. "
    + "; ".join(f"**{name}**: {fmt.explain}" for name, fmt in FORMATS.items())
    + ". Only anonymous votes with no identity leak go out unless you tick the boxes. Voter ids are anonymised."
)


def build_export_tab(service: ExportService) -> None:
    """Lay out the Export tab and wire its one event (inside an open gr.Blocks)."""
    gr.Markdown(EXPLAIN)
    token = gr.Textbox(label="Admin token", type="password", elem_id="export-token")
    with gr.Row():
        fmt = gr.Dropdown(list(FORMATS), value="dpo", label="Format", elem_id="export-format")
        suffix = gr.Radio([".jsonl", ".parquet"], value=".jsonl", label="File type", elem_id="export-suffix")
    with gr.Row():
        since = gr.Textbox(label="First day (YYYY-MM-DD, optional)", elem_id="export-since")
        until = gr.Textbox(label="Day after the last (YYYY-MM-DD, optional)", elem_id="export-until")
        languages = gr.Textbox(label="Languages (comma-separated names, optional)", elem_id="export-languages")
    with gr.Row():
        named = gr.Checkbox(label="Include votes cast with names visible", elem_id="export-named")
        leaks = gr.Checkbox(label="Include votes where an answer named a model", elem_id="export-leaks")
        margin = gr.Checkbox(label=f"{formats.with_margin()}: margin column from the ratings", elem_id="export-margin")
    button = gr.Button("Export", variant="primary", elem_id="export-run")
    status = gr.Markdown(elem_id="export-status")
    file = gr.File(label="Export", interactive=False, elem_id="export-file")

    async def run(*values: Any) -> tuple[Any, str]:
        key, chosen, kind, first, last, langs, with_named, with_leaks, with_margin = values
        try:
            filters = replace(
                EXPORT_FILTER,
                since=parse_day(str(first or ""), "The first day"),
                until=parse_day(str(last or ""), "The last day"),
                languages=tuple(x.strip() for x in str(langs or "").split(",") if x.strip()) or None,
                include_named=bool(with_named),
                include_leaks=bool(with_leaks),
            )
            summary = await asyncio.to_thread(
                service.run, str(key or ""), str(chosen), str(kind), filters, margin=bool(with_margin)
            )
        except UserError as exc:
            gr.Warning(str(exc))
            return None, str(exc)
        except Exception:
            log.exception("export failed")
            return None, "The export failed; the server log has the details."
        return str(summary.path), "\n".join(f"- {line}" for line in summary.lines(with_path=False))

    button.click(
        run,
        [token, fmt, suffix, since, until, languages, named, leaks, margin],
        [file, status],
        api_name="export",
        concurrency_limit=1,
        concurrency_id="export",
    )
