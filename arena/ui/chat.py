"""The Chat tab: talk to one chosen model, streaming, multi-turn; regenerate, stop, clear; rate answers with reasons.

This module only lays the tab out and binds its events; what each event does is `ChatPresenter`'s.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import gradio as gr

from arena.chat import ChatService
from arena.ui.chat_presenter import RATINGS, ChatPresenter, ChatView, Cleared, Feedback, Liked, Slot
from arena.ui.common import VoterOf, update, warn
from arena.ui.wire_values import WireOutputs

RATE_HELP = (
    "Click a thumb under an answer to rate it: the rating is saved at once. Reasons and a comment are optional; "
    "*Save feedback* adds them to that rating (or rates the answer whose number you give)."
)


@dataclass(frozen=True)
class _Tab:
    """The components of the Chat tab."""

    slot: Any
    model: Any
    chatbot: Any
    notice: Any
    box: Any
    send: Any
    regenerate: Any
    stop: Any
    clear: Any
    form: Any
    rating: Any
    answer: Any
    tags: Any
    comment: Any
    rate: Any
    status: Any

    @property
    def outputs(self) -> list[Any]:
        """What a conversation render updates: the pane, the input box, the notice."""
        return [self.chatbot, self.box, self.notice]

    @cached_property
    def wire(self) -> WireOutputs:
        """`outputs` values in the page's form, for the streamed events (they skip Gradio's postprocess)."""
        return WireOutputs(self.outputs)

    @property
    def form_fields(self) -> list[Any]:
        """The rating form's fields, emptied with the conversation."""
        return [self.rating, self.answer, self.tags, self.comment, self.status]


def chat_outputs(view: ChatView) -> tuple[Any, ...]:
    """A view as the values of `_Tab.outputs`, its warning toasted."""
    warn(view.warning)
    return view.messages, update(view.box), view.notice


def cleared_outputs(cleared: Cleared) -> tuple[Any, ...]:
    """The conversation and the rating form after Clear: emptied, or left as they are while an answer streams."""
    form: tuple[Any, ...] = (None, "", [], "", "") if cleared.emptied else tuple(gr.update() for _ in range(5))
    return (*chat_outputs(cleared.view), *form)


def feedback_outputs(feedback: Feedback) -> tuple[Any, ...]:
    """The status line and the answer number after *Save feedback*."""
    warn(feedback.warning)
    return feedback.status, update(feedback.answer)


def liked_outputs(liked: Liked) -> tuple[Any, ...]:
    """The rating form after a thumb, opened."""
    warn(liked.warning)
    fields = (liked.rating, liked.answer, liked.tags, liked.comment)
    return (*(update(f) for f in fields), liked.status, gr.update(open=True))


def _layout(presenter: ChatPresenter) -> _Tab:
    slot = gr.State(Slot())
    names = presenter.names
    model = gr.Dropdown(
        choices=presenter.choices(), value=names[0] if names else None, label="Model", elem_id="chat-model"
    )
    chatbot = gr.Chatbot(label="Chat", height=460, buttons=["copy", "copy_all"], elem_id="chat-pane")
    notice = gr.Markdown(elem_id="chat-notice")
    with gr.Row():
        box = gr.Textbox(placeholder="Type a message …", show_label=False, scale=8, elem_id="chat-input")
        send = gr.Button("Send", variant="primary", scale=1, elem_id="chat-send")
    with gr.Row():
        regenerate = gr.Button("Regenerate", elem_id="chat-regenerate")
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
        tags = gr.CheckboxGroup(presenter.tags, label="Reasons (optional)", elem_id="chat-tags")
        comment = gr.Textbox(label="Comment (optional)", max_lines=4, elem_id="chat-comment")
        rate = gr.Button("Save feedback", elem_id="chat-send-feedback")
        status = gr.Markdown(elem_id="chat-rating-status")
    parts = (box, send, regenerate, stop, clear, form, rating, answer, tags, comment, rate, status)
    tab = _Tab(slot, model, chatbot, notice, *parts)
    tab.wire  # noqa: B018 -- made now: an output without a wire form fails at start, not at the first event
    return tab


def build_chat_tab(service: ChatService, voter_of: VoterOf, concurrency_limit: int, chat_tab: gr.Tab) -> None:
    """Lay out the Chat tab and wire its events (inside an open gr.Blocks)."""
    presenter = ChatPresenter(service)
    tab = _layout(presenter)
    _bind_conversation(tab, presenter, voter_of, concurrency_limit)
    _bind_rating(tab, presenter, voter_of, concurrency_limit, chat_tab)


def _bind_conversation(tab: _Tab, presenter: ChatPresenter, voter_of: VoterOf, limit: int) -> None:
    """Send, Regenerate, Stop (with the render after it) and Clear."""

    async def on_send(name: str, text: str, holder: Slot, request: gr.Request) -> AsyncGenerator[tuple[Any, ...], None]:
        async for view in presenter.send(holder, name, text, voter_of(request)):
            yield tab.wire(chat_outputs(view))

    async def on_regenerate(name: str, holder: Slot, request: gr.Request) -> AsyncGenerator[tuple[Any, ...], None]:
        async for view in presenter.regenerate(holder, name, voter_of(request)):
            yield tab.wire(chat_outputs(view))

    async def after_stop(holder: Slot) -> tuple[Any, ...]:
        return tab.wire(chat_outputs(await presenter.after_stop(holder)))

    def on_clear(holder: Slot) -> tuple[Any, ...]:
        return cleared_outputs(presenter.clear(holder))

    common: dict[str, Any] = {"concurrency_limit": limit}
    wired: dict[str, Any] = {"postprocess": False, **common}  # the streamed events hand over wire values
    outputs = tab.outputs
    args: dict[str, Any] = {"inputs": [tab.model, tab.box, tab.slot], "outputs": outputs, "concurrency_id": "chat_send"}
    streams: list[Any] = [
        tab.send.click(on_send, api_name="chat_send", **args, **wired),
        tab.box.submit(on_send, api_visibility="private", **args, **wired),
        tab.regenerate.click(
            on_regenerate,
            [tab.model, tab.slot],
            outputs,
            api_name="chat_regenerate",
            concurrency_id="chat_send",
            **wired,
        ),
    ]
    tab.stop.click(
        lambda holder: presenter.stop(holder), [tab.slot], None, cancels=streams, api_name="chat_stop", **common
    ).then(after_stop, [tab.slot], outputs, api_visibility="private", **wired)
    cleared = [*outputs, *tab.form_fields]
    tab.clear.click(on_clear, [tab.slot], cleared, api_name="chat_clear", **common)
    tab.chatbot.clear(on_clear, [tab.slot], cleared, api_visibility="private", **common)  # the pane's own bin button
    tab.model.change(on_clear, [tab.slot], cleared, api_visibility="private", **common)


def _bind_rating(tab: _Tab, presenter: ChatPresenter, voter_of: VoterOf, limit: int, chat_tab: gr.Tab) -> None:
    """Save feedback, a thumb under an answer, and the model list refreshed when the tab is opened."""

    async def on_feedback(
        choice: Any, number: Any, reasons: Any, note: Any, holder: Slot, request: gr.Request
    ) -> tuple[Any, ...]:
        return feedback_outputs(await presenter.feedback(holder, choice, number, reasons, note, voter_of(request)))

    async def on_like(
        holder: Slot, before: Any, reasons: Any, note: Any, request: gr.Request, data: gr.LikeData
    ) -> tuple[Any, ...]:
        # a thumb under an answer stores its rating at once; the form then offers optional reasons and a comment
        index = int(data.index[0] if isinstance(data.index, (list, tuple)) else data.index)
        liked = await presenter.like(holder, index, data.liked, before, reasons, note, voter_of(request))
        return liked_outputs(liked)

    common: dict[str, Any] = {"concurrency_limit": limit}
    feedback_inputs = [tab.rating, tab.answer, tab.tags, tab.comment, tab.slot]
    tab.rate.click(on_feedback, feedback_inputs, [tab.status, tab.answer], api_name="chat_feedback", **common)
    like_outputs = [*tab.form_fields, tab.form]
    tab.chatbot.like(
        on_like, [tab.slot, tab.answer, tab.tags, tab.comment], like_outputs, api_visibility="private", **common
    )
    chat_tab.select(
        lambda: gr.update(choices=presenter.choices()), None, [tab.model], api_visibility="private", **common
    )
