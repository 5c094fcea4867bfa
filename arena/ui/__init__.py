"""The Gradio front end: one Blocks app whose tabs are the entries of `arena.ui.tabs.TABS`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import gradio as gr

from arena.battle import BattleService
from arena.chat import ChatService
from arena.config import AppConfig
from arena.export.service import ExportService
from arena.leaderboard import LeaderboardService
from arena.ui.banner import build_banner
from arena.ui.common import VoterOf
from arena.ui.sessions import use_light_sessions
from arena.ui.tabs import TABS, TabContext

QUEUE_POLL_S = 0.005  # how often Gradio's queue looks for new events while idle (its own default: 1 ms)

if TYPE_CHECKING:
    from backends.variants.builder import VariantBuilder


def build_ui(
    config: AppConfig,
    battles: BattleService,
    chats: ChatService,
    board: LeaderboardService,
    voter_of: VoterOf,
    exports: ExportService | None = None,
    *,
    variants: VariantBuilder | None = None,
) -> gr.Blocks:
    """The whole web app, ready to queue and launch; the Export tab only with an export service (admin token set)."""
    ctx = TabContext(config, battles, chats, board, voter_of, exports)
    # exported files are copied into Gradio's cache to be downloaded: drop them there after an hour
    with gr.Blocks(title=config.arena.title, analytics_enabled=False, delete_cache=(1800, 3600)) as ui:
        gr.Markdown(f"# {config.arena.title}")
        build_banner(config.arena.notice, config.demo, variants)
        for spec in TABS:
            if spec.shown(ctx):
                with gr.Tab(spec.label, id=spec.id) as tab:
                    spec.build(ctx, tab)
    ui.queue(default_concurrency_limit=ctx.concurrency_limit)
    # Gradio's queue looks for new events every millisecond while none is waiting (1,000 wake-ups a second: about
    # 7% of a core here, idle or busy, per process). Looking every QUEUE_POLL_S delays an event's start by at most
    # that much.
    ui._queue.sleep_when_free = QUEUE_POLL_S
    use_light_sessions()  # a new visitor's session state no longer serialises all 95 blocks (~9.5 ms of CPU)
    return ui  # type: ignore[no-any-return]
