"""The banner under the title: what these models are, and the style variants still joining the arena."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gradio as gr

if TYPE_CHECKING:
    from backends.variants.builder import VariantBuilder

DEMO_NOTICE = (
    "**Demo models.** These are tiny models with random weights, built on this machine: they print random "
    "text. To compare real models, write a config file (see the README, *Configuration*) and start "
    "`python app.py --config your-config.yaml`."
)
REFRESH_SECONDS = 2.0


def progress_markdown(builder: VariantBuilder | None) -> str:
    """One line on the variants being built, or "" once every one has ended (built or failed for good)."""
    if builder is None:
        return ""
    statuses = builder.statuses()
    failed = [s.model for s in statuses if s.state == "failed"]
    if not builder.pending:
        return f"Could not build: {', '.join(failed)} (see the server log); the other models serve." if failed else ""
    ready = sum(s.state == "ready" for s in statuses)
    parts = "; ".join(s.sentence() for s in statuses)
    hint = "battles use the models that are ready" if ready else "battles start when the first variant is ready"
    return f"**Style variants joining the arena** ({ready} of {len(statuses)} ready; {hint}): {parts}."


def build_banner(notice: str | None, demo: bool, builder: VariantBuilder | None) -> None:
    """The notice, and a progress line refreshed every few seconds while variants are still being built."""
    if demo:
        gr.Markdown(DEMO_NOTICE, elem_id="demo-notice")
    if notice:
        gr.Markdown(notice, elem_id="notice")
    if builder is None:
        return
    line = gr.Markdown(progress_markdown(builder), elem_id="variant-progress")
    timer = gr.Timer(REFRESH_SECONDS, active=builder.pending)

    def refresh() -> tuple[str, Any]:
        text = progress_markdown(builder)
        return text, gr.Timer(active=builder.pending)

    # cheap, read-only, and every open page polls it: no concurrency limit, no queue position shown
    timer.tick(refresh, outputs=[line, timer], concurrency_limit=None, show_progress="hidden", api_visibility="private")
