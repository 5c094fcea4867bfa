"""The Arena and Side-by-side tabs: two panes streaming at once, votes, reveal, regenerate, stop, new round.

One builder serves both: `named=False` draws an anonymous pair, `named=True` lets the user pick the two models.
This module only lays the tab out and binds its events; what each event does is `BattlePresenter`'s.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import gradio as gr

from arena.battle import BattleService
from arena.domain import Outcome
from arena.ui.battle_presenter import BattlePresenter, BattleView, Pick, Slot, vote_choices
from arena.ui.common import VoterOf, update, warn
from arena.ui.wire_values import WireOutputs

RULES = (
    "**Rules.** Ask anything; two anonymous models answer side by side. Ask follow-ups if you like, then vote on "
    "the last round: the names are revealed after your vote, and you may keep chatting (later votes in the same "
    "battle are not anonymous). If an answer names a model, your vote is kept but does not count towards the "
    "leaderboard. *Regenerate* draws new answers to the last question before you vote."
)
NAMED_RULES = (
    "Pick two models (or the same one twice) and compare them side by side. These votes are stored as "
    "**named**: they do not count towards the anonymous leaderboard."
)
# Gradio's Chatbot always shows a clear button (a bin icon, its label translated) in its top panel. In a battle
# pane it would hide an answer whose vote stays enabled; with only per-message copy buttons asked for, that
# panel holds nothing else, so the wrapper around the panes hides the panel (scoped to the wrapper).
PANES_CSS = (
    ".icon-button-wrapper.top-panel { display: none !important; } "
    ".html-container:has(> &) { padding: 0; }"  # the wrapper adds no space of its own around the panes
)


@dataclass(frozen=True)
class _Tab:
    """The components of one battle tab."""

    slot: Any
    pickers: list[Any]
    panes: list[Any]
    notice: Any
    reveal: Any
    vote_buttons: list[Any]
    vote_note: Any
    box: Any
    send: Any
    regenerate: Any
    stop: Any
    new_round: Any
    votes: list[tuple[Outcome, str]]  # the vote buttons' outcomes and labels, in `vote_buttons` order

    @cached_property
    def wire(self) -> WireOutputs:
        """`outputs` values in the page's form: every event rendering the tab skips Gradio's postprocess."""
        return WireOutputs(self.outputs)

    @property
    def outputs(self) -> list[Any]:
        """What every render of the tab updates, in `values()` order."""
        return [*self.panes, self.box, self.notice, self.reveal, self.vote_note, *self.vote_buttons]

    def values(self, view: BattleView) -> tuple[Any, ...]:
        """A view as the values of `outputs`."""
        if view.votable is None:  # a frame while tokens arrive: plain labels leave the buttons as they are, cheaply
            buttons: list[Any] = [label for _, label in self.votes]
        else:
            buttons = [gr.update(interactive=view.votable) for _ in self.votes]
        return self.wire(
            (*view.panes, update(view.box), update(view.notice), update(view.reveal), view.vote_note, *buttons)
        )

    def shown(self, view: BattleView) -> tuple[Any, ...]:
        """Toast the view's warning, if any, and return its component values."""
        warn(view.warning)
        return self.values(view)


def _layout(prefix: str, named: bool, names: list[str], votes: list[tuple[Outcome, str]]) -> _Tab:
    gr.Markdown(NAMED_RULES if named else RULES)
    slot = gr.State(Slot())
    pickers: list[Any] = []
    if named:
        with gr.Row():
            pickers = [
                gr.Dropdown(names, value=names[0] if names else None, label="Model A", elem_id=f"{prefix}-model-a"),
                gr.Dropdown(names, value=names[-1] if names else None, label="Model B", elem_id=f"{prefix}-model-b"),
            ]
    wrapper = gr.HTML(
        html_template="@children",
        css_template=PANES_CSS,
        js_on_load=None,
        apply_default_css=False,
        container=False,
        elem_id=f"{prefix}-panes",
    )
    with wrapper, gr.Row():
        panes = [
            gr.Chatbot(label=f"Model {s}", height=420, buttons=["copy"], elem_id=f"{prefix}-pane-{s.lower()}")
            for s in ("A", "B")
        ]
    notice = gr.Markdown(elem_id=f"{prefix}-notice")
    reveal = gr.Markdown(elem_id=f"{prefix}-reveal")
    with gr.Row():
        vote_buttons = [gr.Button(label, interactive=False, elem_id=f"{prefix}-vote-{o.value}") for o, label in votes]
    vote_note = gr.Markdown(elem_id=f"{prefix}-vote-note")
    with gr.Row():
        box = gr.Textbox(
            placeholder="Ask both models a question …", show_label=False, scale=8, elem_id=f"{prefix}-input"
        )
        send = gr.Button("Send", variant="primary", scale=1, elem_id=f"{prefix}-send")
    with gr.Row():
        regenerate = gr.Button("Regenerate", elem_id=f"{prefix}-regenerate")
        stop = gr.Button("Stop", elem_id=f"{prefix}-stop")
        new_round = gr.Button("New round", elem_id=f"{prefix}-new")
    tab = _Tab(
        slot, pickers, panes, notice, reveal, vote_buttons, vote_note, box, send, regenerate, stop, new_round, votes
    )
    tab.wire  # noqa: B018 -- made now: an output without a wire form fails at start, not at the first event
    return tab


def build_battle_tab(
    service: BattleService, voter_of: VoterOf, concurrency_limit: int, *, named: bool, slight: bool = False
) -> None:
    """Lay out one battle tab and wire its events (inside an open gr.Blocks); `slight` adds the buttons for a slight
    preference."""
    prefix = "named" if named else "battle"
    presenter = BattlePresenter(service, named=named)
    tab = _layout(prefix, named, presenter.choices() if named else [], vote_choices(slight))
    # bound in this order as before the presenter existed: the page calls events by their index
    _bind_rounds(tab, presenter, voter_of, concurrency_limit, prefix)
    _bind_votes(tab, presenter, voter_of, concurrency_limit, prefix)
    _bind_resets(tab, presenter, voter_of, concurrency_limit, prefix)


def _bind_rounds(tab: _Tab, presenter: BattlePresenter, voter_of: VoterOf, limit: int, prefix: str) -> None:
    """Send, Regenerate, and Stop (with the render after it)."""

    async def on_send(
        text: str, holder: Slot, request: gr.Request, *picked: Any
    ) -> AsyncGenerator[tuple[Any, ...], None]:
        pick: Pick | None = (picked[0], picked[1]) if picked else None
        async for view in presenter.send(holder, text, voter_of(request), pick):
            yield tab.shown(view)

    async def on_regenerate(holder: Slot, request: gr.Request) -> AsyncGenerator[tuple[Any, ...], None]:
        async for view in presenter.regenerate(holder, voter_of(request)):
            yield tab.shown(view)

    def on_stop(holder: Slot) -> None:
        presenter.stop(holder)

    async def after_stop(holder: Slot) -> tuple[Any, ...]:
        return tab.shown(await presenter.after_stop(holder))

    common: dict[str, Any] = {"outputs": tab.outputs, "concurrency_limit": limit, "postprocess": False}
    send_args: dict[str, Any] = {
        "fn": on_send,
        "inputs": [tab.box, tab.slot, *tab.pickers],
        "concurrency_id": f"{prefix}_send",
        **common,
    }
    streams: list[Any] = [
        tab.send.click(api_name=f"{prefix}_send", **send_args),
        tab.box.submit(api_visibility="private", **send_args),
        tab.regenerate.click(
            on_regenerate, [tab.slot], api_name=f"{prefix}_regenerate", concurrency_id=f"{prefix}_send", **common
        ),
    ]
    tab.stop.click(on_stop, [tab.slot], None, cancels=streams, api_name=f"{prefix}_stop", concurrency_limit=limit).then(
        after_stop, [tab.slot], tab.outputs, api_visibility="private", concurrency_limit=limit, postprocess=False
    )


def _bind_votes(tab: _Tab, presenter: BattlePresenter, voter_of: VoterOf, limit: int, prefix: str) -> None:
    """One event per vote button, all in one concurrency group."""
    for (outcome, _), button in zip(tab.votes, tab.vote_buttons, strict=True):

        async def vote_fn(holder: Slot, request: gr.Request, _o: Outcome = outcome) -> tuple[Any, ...]:
            return tab.shown(await presenter.vote(holder, _o, voter_of(request)))

        button.click(
            vote_fn,
            [tab.slot],
            tab.outputs,
            api_name=f"{prefix}_vote_{outcome.value}",
            concurrency_id=f"{prefix}_vote",
            concurrency_limit=limit,
            postprocess=False,
        )


def _bind_resets(tab: _Tab, presenter: BattlePresenter, voter_of: VoterOf, limit: int, prefix: str) -> None:
    """New round, and a pane's own clear button."""

    def on_new_round(holder: Slot, request: gr.Request) -> tuple[Any, ...]:
        return tab.shown(presenter.new_round(holder, voter_of(request)))

    def on_pane_cleared(holder: Slot) -> tuple[Any, ...]:
        # the panes' own clear button is hidden; should one still fire, put the answers back (votes stay as they are)
        return tab.shown(presenter.current(holder))

    common: dict[str, Any] = {"concurrency_limit": limit, "postprocess": False}  # values come in wire form
    tab.new_round.click(on_new_round, [tab.slot], tab.outputs, api_name=f"{prefix}_new", **common)
    for chat in tab.panes:
        chat.clear(on_pane_cleared, [tab.slot], tab.outputs, api_visibility="private", **common)
