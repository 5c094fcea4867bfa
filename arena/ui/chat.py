"""The Chat tab: talk to one chosen model, streaming, multi-turn; regenerate, stop, clear; rate answers with reasons."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from arena.chat import ChatService
from arena.domain import ChatState, ReplyStatus, Voter
from arena.errors import UserError
from arena.ui.common import VoterOf, pane, shown

# plain words, not thumbs: a browser without an emoji font shows emoji as empty boxes
GOOD, BAD = "Good answer", "Bad answer"
RATINGS = {GOOD: True, BAD: False}
RATE_HELP = (
    "Click a thumb under an answer to rate it: the rating is saved at once. Reasons and a comment are optional; "
    "*Save feedback* adds them to that rating (or rates the answer whose number you give)."
)
STOP_WAIT_SECONDS = 30.0  # at most this long the render after Stop waits for the stopped answer to be stored


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


def _number(st: ChatState | None, turn: int) -> int:
    """The position of a stored turn among the answers shown (1-based, as the user counts)."""
    return sorted(st.message_ids).index(turn) + 1 if st is not None else 0


def build_chat_tab(service: ChatService, voter_of: VoterOf, concurrency_limit: int, chat_tab: gr.Tab) -> None:
    """Lay out the Chat tab and wire its events (inside an open gr.Blocks)."""
    names = service.model_names()

    def choices() -> list[tuple[str, str]]:
        return [(n if service.is_available(n) else f"{n} (unavailable)", n) for n in names]

    slot = gr.State(Slot())
    model = gr.Dropdown(choices=choices(), value=names[0] if names else None, label="Model", elem_id="chat-model")
    chatbot = gr.Chatbot(label="Chat", height=460, buttons=["copy", "copy_all"], elem_id="chat-pane")
    notice = gr.Markdown(elem_id="chat-notice")
    with gr.Row():
        box = gr.Textbox(placeholder="Type a message …", show_label=False, scale=8, elem_id="chat-input")
        send = gr.Button("Send", variant="primary", scale=1, elem_id="chat-send")
    with gr.Row():
        regen = gr.Button("Regenerate", elem_id="chat-regenerate")
        stop = gr.Button("Stop", elem_id="chat-stop")
        clear = gr.Button("Clear", elem_id="chat-clear")
    with gr.Accordion("Rate an answer", open=False, elem_id="chat-rate") as form:
        gr.Markdown(RATE_HELP)
        with gr.Row():
            rating = gr.Radio(list(RATINGS), label="Rating", elem_id="chat-rating")
            answer = gr.Textbox(
                label="Answer number (1 = the first)",
                placeholder="empty: the last answer",
                max_lines=1,
                elem_id="chat-answer",
            )
        tags = gr.CheckboxGroup(service.feedback_tags, label="Reasons (optional)", elem_id="chat-tags")
        comment = gr.Textbox(label="Comment (optional)", max_lines=4, elem_id="chat-comment")
        rate = gr.Button("Save feedback", elem_id="chat-send-feedback")
        status = gr.Markdown(elem_id="chat-rating-status")
    outputs: list[Any] = [chatbot, box, notice]
    cleared: list[Any] = [*outputs, rating, answer, tags, comment, status]

    async def stream(
        holder: Slot,
        make: Callable[[ChatState, Voter], AsyncGenerator[ChatState, None]],
        name: str,
        request: gr.Request,
    ) -> AsyncGenerator[tuple[Any, ...], None]:
        voter = voter_of(request)
        st = holder.chat
        try:
            if st is None or st.model != name:
                if st is not None and st.streaming:
                    raise UserError("Please wait until the answer is finished.")
                st = holder.chat = service.new_chat(name, voter)
            async with contextlib.aclosing(make(st, voter)) as updates:
                async for current in updates:
                    yield _messages(current), "", ""
        except UserError as exc:
            gr.Warning(str(exc))
            yield _messages(st), gr.update(), str(exc)

    async def on_send(name: str, text: str, holder: Slot, request: gr.Request) -> AsyncGenerator[tuple[Any, ...], None]:
        async for update in stream(holder, lambda st, v: service.ask(st, text, v), name, request):
            yield update

    async def on_regenerate(name: str, holder: Slot, request: gr.Request) -> AsyncGenerator[tuple[Any, ...], None]:
        async for update in stream(holder, service.regenerate, name, request):
            yield update

    def on_clear(holder: Slot) -> tuple[Any, ...]:
        if holder.chat is not None and holder.chat.streaming:
            wait = "Please wait until the answer is finished."
            return (_messages(holder.chat), gr.update(), wait, *(gr.update() for _ in range(5)))
        holder.chat = None
        return [], "", "", None, "", [], "", ""

    async def on_feedback(
        choice: Any, number: Any, reasons: Any, note: Any, holder: Slot, request: gr.Request
    ) -> tuple[Any, ...]:
        st = holder.chat
        try:
            turn = service.answer_turn(st, number)
            liked = RATINGS.get(choice) if isinstance(choice, str) else None
            await service.feedback(st, turn, liked, reasons, note, voter_of(request))
        except UserError as exc:
            gr.Warning(str(exc))
            return str(exc), gr.update()
        shown_number = _number(st, turn)
        return f"Thanks for your feedback: answer {shown_number} is rated *{choice}*.", str(shown_number)

    async def on_like(
        holder: Slot, before: Any, reasons: Any, note: Any, request: gr.Request, data: gr.LikeData
    ) -> tuple[Any, ...]:
        # a thumb under an answer stores its rating at once; the form then offers optional reasons and a comment
        st = holder.chat
        index = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
        number = sum(1 for m in _messages(st)[: int(index) + 1] if m["role"] == "assistant")
        unchanged = (gr.update(), str(number), gr.update(), gr.update())
        if not isinstance(data.liked, bool):  # the thumb was clicked off: a stored rating stays until changed
            return (
                *unchanged,
                f"Answer {number} keeps any rating already saved; click a thumb to change it.",
                gr.update(open=True),
            )
        if st is not None and number > len(st.message_ids):
            return (
                *unchanged,
                "That answer cannot be rated: it is still streaming, or it ended with an error.",
                gr.update(open=True),
            )
        try:
            turn = service.answer_turn(st, number)
            await service.rate(st, turn, data.liked, voter_of(request))
        except UserError as exc:
            gr.Warning(str(exc))
            return (*unchanged, str(exc), gr.update(open=True))
        label = GOOD if data.liked else BAD
        same = str(before).strip() == str(number)  # the same answer again: keep the reasons and comment typed for it
        saved = f"Saved: answer {number} is rated *{label}*. Reasons and a comment are optional: add them here."
        return label, str(number), reasons if same else [], note if same else "", saved, gr.update(open=True)

    common: dict[str, Any] = {"concurrency_limit": concurrency_limit}
    args: dict[str, Any] = {"inputs": [model, box, slot], "outputs": outputs, "concurrency_id": "chat_send", **common}
    streams: list[Any] = [
        send.click(on_send, api_name="chat_send", **args),
        box.submit(on_send, api_visibility="private", **args),
        regen.click(
            on_regenerate, [model, slot], outputs, api_name="chat_regenerate", concurrency_id="chat_send", **common
        ),
    ]

    async def after_stop(holder: Slot) -> tuple[Any, ...]:
        # the cancelled stream never sends its last frame: render the stored answer once it is written
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STOP_WAIT_SECONDS):
                await service.wait_until_stored(holder.chat)
        return _messages(holder.chat), gr.update(), ""

    stop.click(
        lambda holder: service.stop(holder.chat), [slot], None, cancels=streams, api_name="chat_stop", **common
    ).then(after_stop, [slot], outputs, api_visibility="private", **common)
    clear.click(on_clear, [slot], cleared, api_name="chat_clear", **common)
    chatbot.clear(on_clear, [slot], cleared, api_visibility="private", **common)  # the pane's own bin button
    model.change(on_clear, [slot], cleared, api_visibility="private", **common)
    rate.click(on_feedback, [rating, answer, tags, comment, slot], [status, answer], api_name="chat_feedback", **common)
    like_outputs = [rating, answer, tags, comment, status, form]
    chatbot.like(on_like, [slot, answer, tags, comment], like_outputs, api_visibility="private", **common)
    chat_tab.select(lambda: gr.update(choices=choices()), None, [model], api_visibility="private", **common)
