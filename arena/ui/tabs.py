"""The tab registry: one entry per tab of the web app, in the order the page shows them.

Adding a tab is one `TabSpec` in `TABS` plus its module under arena/ui/ (a presenter and a `build_*_tab`) and
its tests; `build_ui` never names a tab. See CONTRIBUTING.md, "How to add a UI tab".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gradio as gr

from arena.battle import BattleService
from arena.chat import ChatService
from arena.config import AppConfig
from arena.export.service import ExportService
from arena.leaderboard import LeaderboardService
from arena.ui.battle import build_battle_tab
from arena.ui.chat import build_chat_tab
from arena.ui.common import VoterOf
from arena.ui.export import build_export_tab
from arena.ui.leaderboard import build_leaderboard_tab
from arena.ui.models import build_models_tab


@dataclass(frozen=True)
class TabContext:
    """What a tab builder may use: the config and the services, built once in the composition root."""

    config: AppConfig
    battles: BattleService
    chats: ChatService
    board: LeaderboardService
    voter_of: VoterOf
    exports: ExportService | None = None

    @property
    def concurrency_limit(self) -> int:
        """How many events of one kind run at once (the config's)."""
        return self.config.arena.concurrency_limit


def always(_ctx: TabContext) -> bool:
    """The condition of a tab every deployment shows."""
    return True


@dataclass(frozen=True)
class TabSpec:
    """One tab: its label, its id (the `gr.Tab` id, stable for links and tests), how to build it, and when."""

    label: str
    id: str
    build: Callable[[TabContext, gr.Tab], None]  # lays out the tab's content inside the open tab, binds its events
    shown: Callable[[TabContext], bool] = always


def _arena(ctx: TabContext, _tab: gr.Tab) -> None:
    slight = ctx.config.arena.slight_preferences
    build_battle_tab(ctx.battles, ctx.voter_of, ctx.concurrency_limit, named=False, slight=slight)


def _named(ctx: TabContext, _tab: gr.Tab) -> None:
    slight = ctx.config.arena.slight_preferences
    build_battle_tab(ctx.battles, ctx.voter_of, ctx.concurrency_limit, named=True, slight=slight)


def _chat(ctx: TabContext, tab: gr.Tab) -> None:
    build_chat_tab(ctx.chats, ctx.voter_of, ctx.concurrency_limit, tab)


def _leaderboard(ctx: TabContext, tab: gr.Tab) -> None:
    build_leaderboard_tab(ctx.board, ctx.concurrency_limit, tab, rounds=ctx.config.arena.leaderboard_rounds)


def _models(ctx: TabContext, tab: gr.Tab) -> None:
    build_models_tab(ctx.config, ctx.battles.available, ctx.concurrency_limit, tab)


def _export(ctx: TabContext, _tab: gr.Tab) -> None:
    if ctx.exports is not None:  # `shown` already checked it; this tells the type checker
        build_export_tab(ctx.exports)


def _with_exports(ctx: TabContext) -> bool:
    # the Export tab exists only with an export service, which the composition root builds only with an admin token
    return ctx.exports is not None


TABS: tuple[TabSpec, ...] = (
    TabSpec("Arena (battle)", "arena", _arena),
    TabSpec("Side by side (named)", "named", _named),
    TabSpec("Chat", "chat", _chat),
    TabSpec("Leaderboard", "leaderboard", _leaderboard),
    TabSpec("Models", "models", _models),
    TabSpec("Export (admin)", "export", _export, shown=_with_exports),
)
