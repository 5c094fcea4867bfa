"""The Arena and Side-by-side tabs: two panes streaming at once, votes, reveal, regenerate, stop, new round.

One builder serves both: `named=False` draws an anonymous pair, `named=True` lets the user pick the two models.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from arena.battle import BattleService, leak_notice
from arena.domain import BattleState, Contestant, Outcome, Side, Voter
from arena.errors import UserError
from arena.ui.common import VoterOf, pane

# plain words: a browser without an emoji font shows emoji as empty boxes
VOTES = [
    (Outcome.A, "A is better"),
    (Outcome.B, "B is better"),
    (Outcome.TIE, "Tie"),
    (Outcome.BOTH_BAD, "Both are bad"),
]
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
ROUND_ERROR = "This round ended with an error, so it cannot be voted on."
REVEALED_VOTES = (
    "**The names are revealed.** Further votes in this battle are not anonymous and do not count towards the "
    "leaderboard. Press *New round* for a new blind battle."
)
# Gradio's Chatbot always shows a clear button (a bin icon, its label translated) in its top panel. In a battle
# pane it would hide an answer whose vote stays enabled; with only per-message copy buttons asked for, that
# panel holds nothing else, so the wrapper around the panes hides the panel (scoped to the wrapper).
PANES_CSS = (
    ".icon-button-wrapper.top-panel { display: none !important; } "
    ".html-container:has(> &) { padding: 0; }"  # the wrapper adds no space of its own around the panes
)
STOP_WAIT_SECONDS = 30.0  # at most this long the render after Stop waits for the stopped round to be stored


@dataclass
class Slot:
    """Per-session holder of the live battle. Events mutate it in place: Gradio gives a concurrent event the
    session's stored object, not the value a still-streaming handler last yielded."""

    battle: BattleState | None = None


def _reveal(contestants: dict[Side, Contestant]) -> str:
    lines = []
    for side in Side:
        c = contestants[side]
        note = f" — {c.description}" if c.description else ""
        lic = f" *License: {c.license}*" if c.license else ""
        lines.append(f"**Model {side.value.upper()}** was **{c.name}**{note}.{lic}")
    return "\n\n".join(lines)


def build_battle_tab(service: BattleService, voter_of: VoterOf, concurrency_limit: int, *, named: bool) -> None:
    """Lay out one battle tab and wire its events (inside an open gr.Blocks)."""
    prefix = "named" if named else "battle"
    gr.Markdown(NAMED_RULES if named else RULES)
    slot = gr.State(Slot())
    pickers: list[Any] = []
    if named:
        names = [m for m in service.available()]
        with gr.Row():
            pickers = [
                gr.Dropdown(names, value=names[0] if names else None, label="Model A", elem_id=f"{prefix}-model-a"),
                gr.Dropdown(names, value=names[-1] if names else None, label="Model B", elem_id=f"{prefix}-model-b"),
            ]
    with (
        gr.HTML(
            html_template="@children",
            css_template=PANES_CSS,
            js_on_load=None,
            apply_default_css=False,
            container=False,
            elem_id=f"{prefix}-panes",
        ),
        gr.Row(),
    ):
        chat_a = gr.Chatbot(label="Model A", height=420, buttons=["copy"], elem_id=f"{prefix}-pane-a")
        chat_b = gr.Chatbot(label="Model B", height=420, buttons=["copy"], elem_id=f"{prefix}-pane-b")
    notice = gr.Markdown(elem_id=f"{prefix}-notice")
    reveal = gr.Markdown(elem_id=f"{prefix}-reveal")
    with gr.Row():
        vote_buttons = [gr.Button(label, interactive=False, elem_id=f"{prefix}-vote-{o.value}") for o, label in VOTES]
    vote_note = gr.Markdown(elem_id=f"{prefix}-vote-note")
    with gr.Row():
        box = gr.Textbox(
            placeholder="Ask both models a question …", show_label=False, scale=8, elem_id=f"{prefix}-input"
        )
        send = gr.Button("Send", variant="primary", scale=1, elem_id=f"{prefix}-send")
    with gr.Row():
        regen = gr.Button("Regenerate", elem_id=f"{prefix}-regenerate")
        stop = gr.Button("Stop", elem_id=f"{prefix}-stop")
        new_round = gr.Button("New round", elem_id=f"{prefix}-new")

    outputs: list[Any] = [chat_a, chat_b, box, notice, reveal, vote_note, *vote_buttons]
    keep = gr.update()

    def vote_note_of(st: BattleState | None) -> str:
        # once a blind battle's names are shown, its later votes are stored as not anonymous: say so by the buttons
        return REVEALED_VOTES if not named and st is not None and st.revealed else ""

    def view(
        st: BattleState | None, *, box_value: Any = keep, message: Any = keep, revealed: Any = keep
    ) -> tuple[Any, ...]:
        if st is None:
            panes: tuple[Any, Any] = ([], [])
            votable = False
        else:
            panes = (
                pane(st.histories[Side.A], st.replies.get(Side.A), st.streaming),
                pane(st.histories[Side.B], st.replies.get(Side.B), st.streaming),
            )
            votable = st.votable
        buttons = [gr.update(interactive=votable) for _ in VOTES]
        return (*panes, box_value, message, revealed, vote_note_of(st), *buttons)

    def streaming_view(st: BattleState) -> tuple[Any, ...]:
        # While tokens arrive only the panes change. Every other output repeats what it shows as a plain value:
        # Gradio rebuilds a component for each gr.update() (about 0.5 ms each), plain values cost next to nothing.
        shown_reveal = _reveal(service.contestants(st)) if named or st.revealed else ""
        panes = [pane(st.histories[side], st.replies.get(side), st.streaming) for side in Side]
        return (*panes, "", leak_notice(st), shown_reveal, vote_note_of(st), *(label for _, label in VOTES))

    def after_round(st: BattleState) -> str:
        if st.errored:
            return ROUND_ERROR
        return leak_notice(st)

    def final_view(st: BattleState | None, *, revealed: Any = keep) -> tuple[Any, ...]:
        # The stored round, votes enabled. Both the stream's last frame and the render after Stop show it; a vote
        # may already have landed between the two, so a voted round keeps the vote's thanks and reveal.
        if st is not None and st.turns > 0 and st.turns - 1 in st.voted_turns:
            return view(st, box_value="")
        return view(st, box_value="", message=after_round(st) if st is not None else "", revealed=revealed)

    async def stream(
        holder: Slot,
        make: Callable[[BattleState, Voter], AsyncGenerator[BattleState, None]],
        request: gr.Request,
        *picked: Any,
    ) -> AsyncGenerator[tuple[Any, ...], None]:
        voter = voter_of(request)
        st = holder.battle
        try:
            if st is None or (named and st.turns == 0 and [st.models[Side.A], st.models[Side.B]] != list(picked)):
                # drawing may read vote statistics and fit ratings: keep it off the event loop
                if named:
                    st = await asyncio.to_thread(service.new_named_battle, voter, *picked)
                else:
                    st = await asyncio.to_thread(service.new_battle, voter)
                holder.battle = st
            revealed: Any = _reveal(service.contestants(st)) if named else keep
            first = True
            async with contextlib.aclosing(make(st, voter)) as updates:
                async for current in updates:
                    if not current.streaming:
                        continue  # the round is stored: the final view below is the one that enables the votes
                    if first:
                        yield view(current, box_value="", message=leak_notice(current), revealed=revealed)
                        first = False
                    else:
                        yield streaming_view(current)
        except UserError as exc:
            gr.Warning(str(exc))
            yield view(st, message=str(exc))
            return
        yield final_view(st, revealed=revealed)

    async def on_send(
        text: str, holder: Slot, request: gr.Request, *picked: Any
    ) -> AsyncGenerator[tuple[Any, ...], None]:
        async for update in stream(holder, lambda st, v: service.ask(st, text, v), request, *picked):
            yield update

    async def on_regenerate(holder: Slot, request: gr.Request) -> AsyncGenerator[tuple[Any, ...], None]:
        if holder.battle is None:
            yield view(None, message="Ask a question first: there is nothing to regenerate yet.")
            return
        async for update in stream(holder, service.regenerate, request, *_models(holder.battle)):
            yield update

    async def on_vote(outcome: Outcome, holder: Slot, request: gr.Request) -> tuple[Any, ...]:
        voter = voter_of(request)
        st = holder.battle
        if st is None:
            gr.Warning("Ask a question first: there is nothing to vote on yet.")
            return view(st, message="Ask a question first: there is nothing to vote on yet.")
        try:
            contestants = await service.vote(st, outcome, voter)
        except UserError as exc:
            gr.Warning(str(exc))
            return view(st, message=str(exc))
        thanks = "Thanks, your vote is recorded."
        if st.identity_leak is not None:
            thanks += " It will not count towards the leaderboard, because an answer named a model."
        return view(st, message=thanks, revealed=_reveal(contestants))

    def on_pane_cleared(holder: Slot) -> tuple[Any, ...]:
        # the panes' own clear button is hidden; should one still fire, put the answers back (votes stay as they are)
        return view(holder.battle)

    def on_stop(holder: Slot) -> None:
        service.stop(holder.battle)

    async def after_stop(holder: Slot) -> tuple[Any, ...]:
        # The cancelled stream never sends its last frame: once the round is stored, render it (votes enabled).
        st = holder.battle
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STOP_WAIT_SECONDS):
                await service.wait_until_stored(st)
        return final_view(st)

    def on_new_round(holder: Slot, request: gr.Request) -> tuple[Any, ...]:
        if holder.battle is not None and holder.battle.streaming:
            gr.Warning("Please wait until both answers are finished.")
            return view(holder.battle, message="Please wait until both answers are finished.")
        holder.battle = None
        if named:
            return view(None, box_value="", message="", revealed="")
        try:
            holder.battle = service.new_battle(voter_of(request))
        except UserError as exc:
            return view(None, box_value="", message=str(exc), revealed="")
        return view(holder.battle, box_value="", message="", revealed="")

    common: dict[str, Any] = {"outputs": outputs, "concurrency_limit": concurrency_limit}
    common_no_outputs: dict[str, Any] = {"concurrency_limit": concurrency_limit}
    send_args: dict[str, Any] = {
        "fn": on_send,
        "inputs": [box, slot, *pickers],
        "concurrency_id": f"{prefix}_send",
        **common,
    }
    streams: list[Any] = [
        send.click(api_name=f"{prefix}_send", **send_args),
        box.submit(api_visibility="private", **send_args),
        regen.click(on_regenerate, [slot], api_name=f"{prefix}_regenerate", concurrency_id=f"{prefix}_send", **common),
    ]
    stop.click(on_stop, [slot], None, cancels=streams, api_name=f"{prefix}_stop", **common_no_outputs).then(
        after_stop, [slot], outputs, api_visibility="private", **common_no_outputs
    )
    for (outcome, _), button in zip(VOTES, vote_buttons, strict=True):

        async def vote_fn(holder: Slot, request: gr.Request, _o: Outcome = outcome) -> tuple[Any, ...]:
            return await on_vote(_o, holder, request)

        button.click(
            vote_fn, [slot], api_name=f"{prefix}_vote_{outcome.value}", concurrency_id=f"{prefix}_vote", **common
        )
    new_round.click(on_new_round, [slot], api_name=f"{prefix}_new", **common)
    for chat in (chat_a, chat_b):
        chat.clear(on_pane_cleared, [slot], outputs, api_visibility="private", **common_no_outputs)


def _models(st: BattleState) -> list[str]:
    return [st.models[Side.A], st.models[Side.B]]
