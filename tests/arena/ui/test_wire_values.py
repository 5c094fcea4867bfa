"""Wire values: what the page receives is the same whether Gradio post-processes a value or Corral hands it over."""

from __future__ import annotations

import asyncio
from typing import Any

import gradio as gr
import pytest
from gradio.state_holder import SessionState

from arena.battle import BattleService
from arena.chat import ChatService
from arena.config import AppConfig
from arena.leaderboard import LeaderboardService
from arena.store.repository import Repository
from arena.ui import build_ui
from arena.ui.common import voter_factory
from arena.ui.wire_values import WireOutputs, chat_messages

ANSWERS = [
    "",
    "…",
    "Paris.",
    "  Leading and trailing spaces  \n\n",
    "Code:\n\n```python\n    def f():\n        return 1\n```\n",
    "    indented first line\n    and the second",
    "**Bold**, # not a header\n- a list item\n\nLa réponse est « oui ». 答案是肯定的。 정답입니다.",
    "Partial answer\n\n*(stopped)*",
    "Error: The model is busy. Please try again.",
    "\x00 control \t tab \r\n windows",
]


def history(answer: str) -> list[dict[str, str]]:
    return [
        {"role": "user", "content": "A question?"},
        {"role": "assistant", "content": answer},
        {"role": "user", "content": "  and a follow-up\n  indented"},
        {"role": "assistant", "content": answer},
    ]


@pytest.mark.parametrize("answer", ANSWERS)
def test_chat_messages_are_what_the_chatbot_itself_makes_of_them(answer: str) -> None:
    expected = gr.Chatbot().postprocess(history(answer)).model_dump()  # type: ignore[arg-type]
    assert chat_messages(history(answer)) == expected


def test_an_empty_or_missing_conversation_is_an_empty_pane() -> None:
    assert chat_messages([]) == gr.Chatbot().postprocess([]).model_dump() == []
    assert chat_messages(None) == gr.Chatbot().postprocess(None).model_dump() == []


@pytest.mark.parametrize("value", ["", "Thanks, your vote is recorded.", "  **Model A** was x.\n\n  indented", None])
def test_markdown_text_and_buttons_are_what_their_components_make_of_them(value: str | None) -> None:
    components = [gr.Markdown(), gr.Textbox(), gr.Button()]
    expected = tuple(c.postprocess(value) for c in components)  # type: ignore[no-untyped-call]
    if value is None:  # a button shows "None" for None; Corral never sends one, the wire form sends nothing
        expected = (None, None, None)
    assert WireOutputs(components)([value] * 3) == expected


def test_updates_keep_their_props_and_their_value_is_put_in_wire_form() -> None:
    wire = WireOutputs([gr.Chatbot(), gr.Button()])
    keep, enable = gr.update(), gr.update(interactive=True)
    assert wire([keep, enable]) == (keep, enable)
    assert wire([gr.update(value=history("x")), gr.update(value="Send", interactive=False)]) == (
        {"__type__": "update", "value": chat_messages(history("x"))},
        {"__type__": "update", "value": "Send", "interactive": False},
    )


def test_a_component_returned_as_an_update_is_left_to_gradio() -> None:
    button = gr.Button(interactive=True, render=False)
    assert WireOutputs([gr.Button()])([button]) == (button,)


def test_an_output_without_a_wire_form_is_refused_when_the_tab_is_built() -> None:
    with pytest.raises(ValueError, match="Number"):
        WireOutputs([gr.Number()])
    with pytest.raises(ValueError, match="reasoning tags"):
        WireOutputs([gr.Chatbot(reasoning_tags=[("<think>", "</think>")])])


def _wired_events(ui: gr.Blocks) -> list[Any]:
    return [fn for fn in ui.fns.values() if not fn.postprocess]


def test_the_page_receives_the_same_bytes_with_and_without_gradios_postprocess(
    demo_config: AppConfig, battles: BattleService, chats: ChatService, repo: Repository
) -> None:
    """Every event bound with postprocess off, fed a render of its outputs both ways: identical page data."""
    board = LeaderboardService(repo, models=[m.name for m in demo_config.models])
    ui = build_ui(demo_config, battles, chats, board, voter_factory(b"salt"))
    wired = _wired_events(ui)
    names = {fn.api_name for fn in wired}
    assert {"battle_send", "battle_regenerate", "named_send", "battle_vote_a", "battle_new", "chat_send"} <= names

    async def page_data(fn: Any, values: list[Any], postprocess: bool) -> list[Any]:
        fn.postprocess = postprocess
        try:
            return list(await ui.postprocess_data(fn, list(values), SessionState(ui)))
        finally:
            fn.postprocess = False

    def render(fn: Any, answer: str) -> list[Any]:
        """Plain values for the event's outputs, as a handler would return them before wiring."""
        plain: dict[type, Any] = {
            gr.Chatbot: history(answer),
            gr.Markdown: "  **Model A** was demo-base.\n\n*License: x*",
            gr.Textbox: "",
            gr.Button: "A is better",
        }
        return [plain[type(c)] for c in fn.outputs]

    for fn in wired:
        for answer in ANSWERS:
            plain = render(fn, answer)
            expected = asyncio.run(page_data(fn, plain, postprocess=True))
            assert asyncio.run(page_data(fn, list(WireOutputs(fn.outputs)(plain)), postprocess=False)) == expected

        # and as updates, with and without a value (kept, or changed along with a prop)
        def updates(fn: Any = fn) -> list[Any]:  # fresh dicts each time: Gradio pops "value" out of an update
            return [gr.update(value=v, visible=True) if k % 2 else gr.update() for k, v in enumerate(render(fn, "x"))]

        expected = asyncio.run(page_data(fn, updates(), postprocess=True))
        assert asyncio.run(page_data(fn, list(WireOutputs(fn.outputs)(updates())), postprocess=False)) == expected
