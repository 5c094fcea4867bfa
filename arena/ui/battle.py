"""The Arena tab: two anonymous panes streaming at once, four vote buttons, the reveal, and New round."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import gradio as gr

from arena.battle import BattleService
from arena.domain import BattleState, Contestant, Outcome, Side
from arena.errors import UserError
from arena.ui.common import VoterOf, pane

VOTES = [
    (Outcome.A, "👈 A is better"),
    (Outcome.B, "👉 B is better"),
    (Outcome.TIE, "🤝 Tie"),
    (Outcome.BOTH_BAD, "👎 Both are bad"),
]
RULES = (
    "Ask anything. Two anonymous models answer side by side; vote for the better answer and their names are "
    "revealed. You may ask follow-ups before voting. Names revealed by the models themselves don't count."
)


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


def build_battle_tab(service: BattleService, voter_of: VoterOf, concurrency_limit: int) -> None:
    """Lay out the Arena tab and wire its events (inside an open gr.Blocks)."""
    gr.Markdown(RULES)
    slot = gr.State(Slot())
    with gr.Row():
        chat_a = gr.Chatbot(label="Model A", height=420, buttons=["copy"])
        chat_b = gr.Chatbot(label="Model B", height=420, buttons=["copy"])
    notice = gr.Markdown(elem_id="battle-notice")
    reveal = gr.Markdown(elem_id="battle-reveal")
    with gr.Row():
        vote_buttons = [gr.Button(label, interactive=False, elem_id=f"vote-{o.value}") for o, label in VOTES]
    with gr.Row():
        box = gr.Textbox(placeholder="Ask both models a question …", show_label=False, scale=8, elem_id="battle-input")
        send = gr.Button("Send", variant="primary", scale=1, elem_id="battle-send")
    new_round = gr.Button("🔄 New round", elem_id="battle-new")

    outputs: list[Any] = [chat_a, chat_b, box, notice, reveal, *vote_buttons]

    def view(st: BattleState | None, *, box_value: Any, message: str = "", revealed: Any = "") -> tuple[Any, ...]:
        if st is None:
            panes: tuple[Any, Any] = ([], [])
            votable = False
        else:
            panes = tuple(pane(st.histories[s], st.replies.get(s), st.streaming) for s in Side)  # type: ignore[assignment]
            votable = st.votable
        buttons = [gr.update(interactive=votable) for _ in VOTES]
        return (*panes, box_value, message, revealed, *buttons)

    async def on_send(text: str, holder: Slot, request: gr.Request) -> AsyncIterator[tuple[Any, ...]]:
        voter = voter_of(request)
        st = holder.battle
        try:
            if st is None:
                st = holder.battle = service.new_battle(voter)
            async for current in service.ask(st, text, voter):
                yield view(current, box_value="", revealed=gr.update())
        except UserError as exc:
            gr.Warning(str(exc))
            yield view(st, box_value=gr.update(), message=str(exc), revealed=gr.update())
            return
        if st.errored:
            yield view(
                st,
                box_value="",
                message="This round ended with an error, so it cannot be voted on.",
                revealed=gr.update(),
            )

    async def on_vote(outcome: Outcome, holder: Slot, request: gr.Request) -> tuple[Any, ...]:
        voter = voter_of(request)
        st = holder.battle
        if st is None:
            gr.Warning("Ask a question first: there is nothing to vote on yet.")
            return view(st, box_value=gr.update(), message="Ask a question first: there is nothing to vote on yet.")
        try:
            contestants = await service.vote(st, outcome, voter)
        except UserError as exc:
            gr.Warning(str(exc))
            return view(st, box_value=gr.update(), message=str(exc), revealed=gr.update())
        return view(st, box_value=gr.update(), message="Thanks, your vote is recorded.", revealed=_reveal(contestants))

    def on_new_round(holder: Slot, request: gr.Request) -> tuple[Any, ...]:
        if holder.battle is not None and holder.battle.streaming:
            gr.Warning("Please wait until both answers are finished.")
            return view(
                holder.battle,
                box_value=gr.update(),
                message="Please wait until both answers are finished.",
                revealed=gr.update(),
            )
        try:
            holder.battle = service.new_battle(voter_of(request))
        except UserError as exc:
            holder.battle = None
            return view(None, box_value="", message=str(exc))
        return view(holder.battle, box_value="", message="")

    submit_args: dict[str, Any] = {
        "fn": on_send,
        "inputs": [box, slot],
        "outputs": outputs,
        "concurrency_limit": concurrency_limit,
        "concurrency_id": "battle_send",
    }
    send.click(api_name="battle_send", **submit_args)
    box.submit(api_visibility="private", **submit_args)
    for (outcome, _), button in zip(VOTES, vote_buttons, strict=True):

        async def vote_fn(holder: Slot, request: gr.Request, _o: Outcome = outcome) -> tuple[Any, ...]:
            return await on_vote(_o, holder, request)

        button.click(
            vote_fn,
            [slot],
            outputs,
            api_name=f"vote_{outcome.value}",
            concurrency_limit=concurrency_limit,
            concurrency_id="vote",
        )
    new_round.click(on_new_round, [slot], outputs, api_name="battle_new", concurrency_limit=concurrency_limit)
