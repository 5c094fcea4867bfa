"""The Chat tab: talk to one chosen model, streaming, multi-turn, with Clear."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import gradio as gr

from arena.chat import ChatService
from arena.domain import ChatState, ReplyStatus
from arena.errors import UserError
from arena.ui.common import VoterOf, pane, shown


@dataclass
class Slot:
    """Per-session holder of the live conversation, mutated in place (see arena.ui.battle.Slot)."""

    chat: ChatState | None = None


def _messages(st: ChatState | None) -> list[dict[str, str]]:
    if st is None:
        return []
    if st.reply is not None and st.reply.status is ReplyStatus.ERROR and not st.streaming:
        # the failed question was taken out of the history; show it with the error sentence
        return [
            *pane(st.history, None, False),
            {"role": "user", "content": st.last_question},
            {"role": "assistant", "content": shown(st.reply)},
        ]
    return pane(st.history, st.reply, st.streaming)


def build_chat_tab(service: ChatService, voter_of: VoterOf, concurrency_limit: int, chat_tab: gr.Tab) -> None:
    """Lay out the Chat tab and wire its events (inside an open gr.Blocks)."""
    names = service.model_names()

    def choices() -> list[tuple[str, str]]:
        return [(n if service.is_available(n) else f"{n} (unavailable)", n) for n in names]

    slot = gr.State(Slot())
    model = gr.Dropdown(choices=choices(), value=names[0] if names else None, label="Model", elem_id="chat-model")
    chatbot = gr.Chatbot(label="Chat", height=460)
    notice = gr.Markdown(elem_id="chat-notice")
    with gr.Row():
        box = gr.Textbox(placeholder="Type a message …", show_label=False, scale=8, elem_id="chat-input")
        send = gr.Button("Send", variant="primary", scale=1, elem_id="chat-send")
    clear = gr.Button("🗑️ Clear", elem_id="chat-clear")
    outputs: list[Any] = [chatbot, box, notice]

    async def on_send(name: str, text: str, holder: Slot, request: gr.Request) -> AsyncIterator[tuple[Any, ...]]:
        voter = voter_of(request)
        st = holder.chat
        try:
            if st is None or st.model != name:
                if st is not None and st.streaming:
                    raise UserError("Please wait until the answer is finished.")
                st = holder.chat = service.new_chat(name, voter)
            async for current in service.ask(st, text, voter):
                yield _messages(current), "", ""
        except UserError as exc:
            gr.Warning(str(exc))
            yield _messages(st), gr.update(), str(exc)

    def on_clear(holder: Slot) -> tuple[Any, ...]:
        if holder.chat is not None and holder.chat.streaming:
            return _messages(holder.chat), gr.update(), "Please wait until the answer is finished."
        holder.chat = None
        return [], "", ""

    args: dict[str, Any] = {
        "fn": on_send,
        "inputs": [model, box, slot],
        "outputs": outputs,
        "concurrency_limit": concurrency_limit,
        "concurrency_id": "chat_send",
    }
    send.click(api_name="chat_send", **args)
    box.submit(api_visibility="private", **args)

    def refresh_models() -> Any:
        return gr.update(choices=choices())

    chat_tab.select(refresh_models, None, [model], api_visibility="private", concurrency_limit=concurrency_limit)
    clear.click(on_clear, [slot], outputs, api_name="chat_clear", concurrency_limit=concurrency_limit)
    model.change(on_clear, [slot], outputs, api_visibility="private", concurrency_limit=concurrency_limit)
