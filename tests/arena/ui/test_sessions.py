"""Light session state: the same configurations as Gradio's own, made when read, and Gradio still uses it."""

from __future__ import annotations

import asyncio
import inspect

import gradio as gr
from gradio import state_holder
from gradio.state_holder import SessionState, StateHolder

from arena.battle import BattleService
from arena.chat import ChatService
from arena.config import AppConfig
from arena.leaderboard import LeaderboardService
from arena.store.repository import Repository
from arena.ui import build_ui
from arena.ui.common import voter_factory
from arena.ui.sessions import LightSessionState
from arena.ui.wire_values import chat_messages


def _ui(config: AppConfig, battles: BattleService, chats: ChatService, repo: Repository) -> gr.Blocks:
    board = LeaderboardService(repo, models=[m.name for m in config.models])
    return build_ui(config, battles, chats, board, voter_factory(b"salt"))


def test_gradio_makes_light_sessions_once_the_ui_is_built(
    demo_config: AppConfig, battles: BattleService, chats: ChatService, repo: Repository
) -> None:
    _ui(demo_config, battles, chats, repo)
    assert state_holder.SessionState is LightSessionState
    # the name Gradio's session store looks up for each new session (a renamed one would be set for nothing)
    assert "SessionState(self.blocks)" in inspect.getsource(StateHolder.__getitem__)


def test_a_light_session_holds_what_gradios_holds(
    demo_config: AppConfig, battles: BattleService, chats: ChatService, repo: Repository
) -> None:
    ui = _ui(demo_config, battles, chats, repo)
    gradios, light = SessionState(ui), LightSessionState(ui)
    assert set(vars(light)) == set(vars(gradios))  # a field Gradio adds to its __init__ shows up here
    assert len(light.config_values) == 0  # nothing is serialised before it is read
    assert list(light.components) == list(gradios.components)  # a deep link still gets every block

    send = next(fn for fn in ui.fns.values() if fn.api_name == "battle_send")
    frame = [chat_messages([{"role": "user", "content": "Hi"}]), *[""] * (len(send.outputs) - 1)]
    fresh_gradios, fresh_light = SessionState(ui), LightSessionState(ui)
    for state in (fresh_gradios, fresh_light):
        asyncio.run(ui.postprocess_data(send, list(frame), state))
    pane = send.outputs[0]._id
    assert fresh_light.config_values[pane] == fresh_gradios.config_values[pane]
    assert fresh_light.config_values[pane]["props"]["value"] == frame[0]
    assert list(fresh_light.components) == list(fresh_gradios.components)
