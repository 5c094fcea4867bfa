"""The tab registry: build_ui lays out exactly the registered tabs, and they add no public endpoint."""

from __future__ import annotations

import inspect

import gradio as gr
from gradio.queueing import Queue

from arena.battle import BattleService
from arena.chat import ChatService
from arena.config import AppConfig
from arena.leaderboard import LeaderboardService
from arena.store.repository import Repository
from arena.ui import QUEUE_POLL_S, build_ui
from arena.ui.common import seal_api, voter_factory
from arena.ui.tabs import TABS, TabContext

# the endpoints a script may call by name (tests/test_fuzz.py checks the same set on a running app)
PUBLIC = {
    *(f"{p}_{e}" for p in ("battle", "named") for e in ("send", "regenerate", "stop", "new")),
    *(f"{p}_vote_{o}" for p in ("battle", "named") for o in ("a", "b", "tie", "both_bad")),
    *(f"chat_{e}" for e in ("send", "regenerate", "stop", "clear", "feedback")),
    "leaderboard",
    "leaderboard_by",
}


def test_build_ui_shows_the_registered_tabs_in_order_and_export_only_with_its_service(
    demo_config: AppConfig, battles: BattleService, chats: ChatService, repo: Repository
) -> None:
    board = LeaderboardService(repo, models=[m.name for m in demo_config.models])
    ui = build_ui(demo_config, battles, chats, board, voter_factory(b"salt"))
    tabs = [b for b in ui.blocks.values() if isinstance(b, gr.Tab)]
    assert [(t.label, t.id) for t in tabs] == [(s.label, s.id) for s in TABS if s.id != "export"]
    assert [t.id for t in tabs][:4] == ["arena", "named", "chat", "leaderboard"]  # the first tab is the arena
    seal_api(ui)
    assert {fn.api_name for fn in ui.fns.values() if fn.api_name is not None} == PUBLIC

    ctx = TabContext(demo_config, battles, chats, board, voter_factory(b"salt"))
    assert [s.id for s in TABS if s.shown(ctx)] == [t.id for t in tabs]
    assert len({s.id for s in TABS}) == len(TABS), "tab ids are unique"


def test_the_queue_looks_for_events_every_few_milliseconds_not_every_one(
    demo_config: AppConfig, battles: BattleService, chats: ChatService, repo: Repository
) -> None:
    board = LeaderboardService(repo, models=[m.name for m in demo_config.models])
    ui = build_ui(demo_config, battles, chats, board, voter_factory(b"salt"))
    assert ui._queue.sleep_when_free == QUEUE_POLL_S
    # the attribute set is the one Gradio's queue loop still reads (a renamed one would be set for nothing)
    assert "await asyncio.sleep(self.sleep_when_free)" in inspect.getsource(Queue.start_processing)
