"""The Gradio front end: one Blocks app with an Arena tab and a Chat tab."""

from __future__ import annotations

from typing import TYPE_CHECKING

import gradio as gr

from arena.battle import BattleService
from arena.chat import ChatService
from arena.config import AppConfig
from arena.export.service import ExportService
from arena.leaderboard import LeaderboardService
from arena.ui.banner import build_banner
from arena.ui.battle import build_battle_tab
from arena.ui.chat import build_chat_tab
from arena.ui.common import VoterOf
from arena.ui.export import build_export_tab
from arena.ui.leaderboard import build_leaderboard_tab

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
    limit = config.arena.concurrency_limit
    # exported files are copied into Gradio's cache to be downloaded: drop them there after an hour
    with gr.Blocks(title=config.arena.title, analytics_enabled=False, delete_cache=(1800, 3600)) as ui:
        gr.Markdown(f"# {config.arena.title}")
        build_banner(config.arena.notice, config.demo, variants)
        with gr.Tab("Arena (battle)", id="arena"):
            build_battle_tab(battles, voter_of, limit, named=False)
        with gr.Tab("Side by side (named)", id="named"):
            build_battle_tab(battles, voter_of, limit, named=True)
        with gr.Tab("Chat", id="chat") as chat_tab:
            build_chat_tab(chats, voter_of, limit, chat_tab)
        with gr.Tab("Leaderboard", id="leaderboard") as board_tab:
            build_leaderboard_tab(board, limit, board_tab, rounds=config.arena.leaderboard_rounds)
        if exports is not None:
            with gr.Tab("Export (admin)", id="export"):
                build_export_tab(exports)
    ui.queue(default_concurrency_limit=limit)
    return ui  # type: ignore[no-any-return]
