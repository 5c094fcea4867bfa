"""What the Arena and Side-by-side tabs show: a presenter over the battle service, one method per event.

It returns plain views (`BattleView`) and never touches Gradio components, so it is tested without a browser;
`arena.ui.battle` lays out the tab and turns each view into component updates.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import assert_never

from arena.battle import BattleService, leak_notice
from arena.domain import BattleState, Contestant, Outcome, Side, Voter
from arena.errors import UserError
from arena.ui.common import KEEP, Keep, pane, wait_stored


def vote_label(outcome: Outcome) -> str:
    """The button a voter presses for `outcome` (plain words: a browser without an emoji font shows boxes)."""
    match outcome:
        case Outcome.A:
            return "A is better"
        case Outcome.B:
            return "B is better"
        case Outcome.TIE:
            return "Tie"
        case Outcome.BOTH_BAD:
            return "Both are bad"
        case Outcome.A_SLIGHTLY:
            return "A is slightly better"
        case Outcome.B_SLIGHTLY:
            return "B is slightly better"
        case _:
            assert_never(outcome)


def vote_choices(slight: bool = False) -> list[tuple[Outcome, str]]:
    """The vote buttons, in the order they are shown; with `slight`, a slight preference either way too."""
    order = [Outcome.A, Outcome.B, Outcome.TIE, Outcome.BOTH_BAD]
    if slight:
        order = [Outcome.A, Outcome.A_SLIGHTLY, Outcome.B_SLIGHTLY, Outcome.B, Outcome.TIE, Outcome.BOTH_BAD]
    return [(outcome, vote_label(outcome)) for outcome in order]


ROUND_ERROR = "This round ended with an error, so it cannot be voted on."
REVEALED_VOTES = (
    "**The names are revealed.** Further votes in this battle are not anonymous and do not count towards the "
    "leaderboard. Press *New round* for a new blind battle."
)
THANKS = "Thanks, your vote is recorded."
LEAK_NOT_COUNTED = " It will not count towards the leaderboard, because an answer named a model."
NOTHING_TO_VOTE = "Ask a question first: there is nothing to vote on yet."
NOTHING_TO_REGENERATE = "Ask a question first: there is nothing to regenerate yet."
WAIT_FOR_ANSWERS = "Please wait until both answers are finished."
STOP_WAIT_SECONDS = 30.0  # at most this long the render after Stop waits for the stopped round to be stored

Pane = list[dict[str, str]]
Pick = tuple[object, object]  # the two models chosen in the Side-by-side tab's pickers, as the browser sent them
Round = Callable[[BattleState, Voter], AsyncGenerator[BattleState, None]]


@dataclass
class Slot:
    """Per-session holder of the live battle. Events mutate it in place: Gradio gives a concurrent event the
    session's stored object, not the value a still-streaming handler last yielded."""

    battle: BattleState | None = None


@dataclass(frozen=True)
class BattleView:
    """One render of a battle tab; a KEEP field leaves its component as it is on screen."""

    panes: tuple[Pane, Pane]
    vote_note: str
    box: str | Keep = KEEP
    notice: str | Keep = KEEP
    reveal: str | Keep = KEEP
    votable: bool | None = False  # None: the vote buttons stay as they are (a frame while tokens arrive)
    warning: str | None = None  # also shown as a toast


def reveal_markdown(contestants: dict[Side, Contestant]) -> str:
    """Who was in each pane, with the notes the config gives (shown after the vote, or at once when named)."""
    lines = []
    for side in Side:
        c = contestants[side]
        note = f" — {c.description}" if c.description else ""
        lic = f" *License: {c.license}*" if c.license else ""
        lines.append(f"**Model {side.value.upper()}** was **{c.name}**{note}.{lic}")
    return "\n\n".join(lines)


def round_notice(st: BattleState) -> str:
    """The sentence under the panes once a round is over: its error, or its identity leak, or nothing."""
    return ROUND_ERROR if st.errored else leak_notice(st)


class BattlePresenter:
    """The behaviour of one battle tab (`named` picks its two models), as views over the battle service."""

    def __init__(self, service: BattleService, *, named: bool, stop_wait_seconds: float = STOP_WAIT_SECONDS) -> None:
        self._service = service
        self._named = named
        self._stop_wait = stop_wait_seconds

    def choices(self) -> list[str]:
        """The models the Side-by-side pickers offer: those that can answer now."""
        return self._service.available()

    def view(
        self,
        st: BattleState | None,
        *,
        box: str | Keep = KEEP,
        notice: str | Keep = KEEP,
        reveal: str | Keep = KEEP,
        warning: str | None = None,
    ) -> BattleView:
        """The battle as it stands, vote buttons on exactly when its last round can be voted on."""
        if st is None:
            return BattleView(([], []), "", box, notice, reveal, False, warning)
        panes = (self._pane(st, Side.A), self._pane(st, Side.B))
        return BattleView(panes, _vote_note(st), box, notice, reveal, st.votable, warning)

    @staticmethod
    def _pane(st: BattleState, side: Side) -> Pane:
        return pane(st.histories[side], st.replies.get(side), st.streaming)

    def _streaming_view(self, st: BattleState, reveal: str) -> BattleView:
        # While tokens arrive only the panes change. Every other field repeats what it shows as a plain value:
        # Gradio rebuilds a component for each gr.update() (about 0.5 ms each), plain values cost next to nothing.
        panes = (self._pane(st, Side.A), self._pane(st, Side.B))
        return BattleView(panes, _vote_note(st), "", leak_notice(st), reveal, None)

    def _final_view(self, st: BattleState | None, *, reveal: str | Keep = KEEP) -> BattleView:
        # The stored round, votes enabled. Both the stream's last frame and the render after Stop show it; a vote
        # may already have landed between the two, so a voted round keeps the vote's thanks and reveal.
        if st is not None and st.last_round_voted:
            return self.view(st, box="")
        return self.view(st, box="", notice=round_notice(st) if st is not None else "", reveal=reveal)

    async def send(
        self, slot: Slot, text: object, voter: Voter, picked: Pick | None = None
    ) -> AsyncGenerator[BattleView, None]:
        """Ask both models `text` (drawing the battle first if there is none) and yield the views as they answer."""
        async for view in self._stream(slot, lambda st, v: self._service.ask(st, text, v), voter, picked):
            yield view

    async def regenerate(self, slot: Slot, voter: Voter) -> AsyncGenerator[BattleView, None]:
        """New answers to the last question, streamed, before any vote on it."""
        if slot.battle is None:
            yield self.view(None, notice=NOTHING_TO_REGENERATE)
            return
        async for view in self._stream(slot, self._service.regenerate, voter, None):
            yield view

    async def _stream(
        self, slot: Slot, make: Round, voter: Voter, picked: Pick | None
    ) -> AsyncGenerator[BattleView, None]:
        st = slot.battle
        try:
            if st is None or (picked is not None and st.repicked(*picked)):
                # drawing may read vote statistics and fit ratings: keep it off the event loop
                st = slot.battle = await asyncio.to_thread(self._draw, voter, picked)
            # no vote lands while a round streams, so what the reveal shows is fixed for the whole stream
            shown = "" if st.anonymous else reveal_markdown(self._service.contestants(st))
            reveal: str | Keep = shown if self._named else KEEP
            first = True
            async with contextlib.aclosing(make(st, voter)) as updates:
                async for current in updates:
                    if not current.streaming:
                        continue  # the round is stored: the final view below is the one that enables the votes
                    if first:
                        yield self.view(current, box="", notice=leak_notice(current), reveal=reveal)
                        first = False
                    else:
                        yield self._streaming_view(current, shown)
        except UserError as exc:
            yield self.view(st, notice=str(exc), warning=str(exc))
            return
        yield self._final_view(st, reveal=reveal)

    def _draw(self, voter: Voter, picked: Pick | None) -> BattleState:
        if picked is None:
            return self._service.new_battle(voter)
        return self._service.new_named_battle(voter, *picked)

    async def vote(self, slot: Slot, outcome: Outcome, voter: Voter) -> BattleView:
        """Record the vote on the last round; the view thanks the voter and reveals both models."""
        st = slot.battle
        if st is None:
            return self.view(st, notice=NOTHING_TO_VOTE, warning=NOTHING_TO_VOTE)
        try:
            contestants = await self._service.vote(st, outcome, voter)
        except UserError as exc:
            return self.view(st, notice=str(exc), warning=str(exc))
        thanks = THANKS + (LEAK_NOT_COUNTED if st.identity_leak is not None else "")
        return self.view(st, notice=thanks, reveal=reveal_markdown(contestants))

    def current(self, slot: Slot) -> BattleView:
        """The battle as it stands (puts the answers back if a pane was cleared; votes stay as they are)."""
        return self.view(slot.battle)

    def stop(self, slot: Slot) -> None:
        """Ask both streams of the live round to stop."""
        self._service.stop(slot.battle)

    async def after_stop(self, slot: Slot) -> BattleView:
        """The stopped round once it is stored (votes enabled): the cancelled stream never sends its last frame."""
        st = slot.battle
        await wait_stored(self._service.wait_until_stored(st), self._stop_wait)
        return self._final_view(st)

    def new_round(self, slot: Slot, voter: Voter) -> BattleView:
        """Drop the battle (not while it streams); a blind tab draws the next pair at once, a named one waits."""
        if slot.battle is not None and slot.battle.streaming:
            return self.view(slot.battle, notice=WAIT_FOR_ANSWERS, warning=WAIT_FOR_ANSWERS)
        slot.battle = None
        if self._named:
            return self.view(None, box="", notice="", reveal="")
        try:
            slot.battle = self._service.new_battle(voter)
        except UserError as exc:
            return self.view(None, box="", notice=str(exc), reveal="")
        return self.view(slot.battle, box="", notice="", reveal="")


def _vote_note(st: BattleState) -> str:
    # once a blind battle's names are shown, its later votes are stored as not anonymous: say so by the buttons
    return REVEALED_VOTES if st.unmasked else ""
