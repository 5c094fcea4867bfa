"""The battle tabs' presenter with the real battle service, the demo models and a SQLite file: no browser."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from arena.battle import BattleService
from arena.domain import BattleMode, BattleState, Outcome, Side, Voter
from arena.ui.battle_presenter import (
    NOTHING_TO_REGENERATE,
    NOTHING_TO_VOTE,
    REVEALED_VOTES,
    ROUND_ERROR,
    THANKS,
    WAIT_FOR_ANSWERS,
    BattlePresenter,
    BattleView,
    Slot,
)
from arena.ui.common import KEEP
from tests.support.store_reads import StoreReads

VOTER = Voter(session_id="ui-1", ip_hash="iphash")


async def drain(views: AsyncGenerator[BattleView, None]) -> list[BattleView]:
    return [v async for v in views]


def pick(slot: Slot, a: str, b: str) -> Slot:
    """A slot holding a blind battle between `a` and `b` (the matchmaker's draw, fixed for the test)."""
    slot.battle = BattleState(models={Side.A: a, Side.B: b}, session_id=VOTER.session_id)
    return slot


def test_a_blind_round_streams_then_enables_the_votes_and_the_vote_reveals(
    battles: BattleService, stored: StoreReads
) -> None:
    presenter = BattlePresenter(battles, named=False)
    slot = pick(Slot(), "demo-lora-a", "demo-lora-b")
    views = asyncio.run(drain(presenter.send(slot, "Salut !", VOTER)))
    first, *frames, final = views
    assert first.box == "" and first.votable is False and first.reveal is KEEP
    assert frames and all(v.votable is None for v in frames), "frames while tokens arrive leave the buttons alone"
    assert final.votable is True and final.notice == "" and final.box == ""
    assert final.panes[0][-1]["role"] == "assistant" and final.panes[0][-1]["content"]

    voted = asyncio.run(presenter.vote(slot, Outcome.A, VOTER))
    assert voted.notice == THANKS and voted.warning is None and voted.votable is False
    assert isinstance(voted.reveal, str) and "**Model A** was **demo-lora-a**" in voted.reveal
    assert voted.vote_note == REVEALED_VOTES  # later votes in this battle are named: said by the buttons
    [vote] = stored.votes()
    assert vote.outcome is Outcome.A and vote.anonymous

    again = asyncio.run(presenter.vote(slot, Outcome.B, VOTER))
    assert again.warning is not None and "already voted" in again.warning and again.notice == again.warning


def test_nothing_to_vote_on_or_regenerate_before_a_question(battles: BattleService) -> None:
    presenter = BattlePresenter(battles, named=False)
    slot = Slot()
    refused = asyncio.run(presenter.vote(slot, Outcome.TIE, VOTER))
    assert (refused.notice, refused.warning, refused.votable) == (NOTHING_TO_VOTE, NOTHING_TO_VOTE, False)
    [view] = asyncio.run(drain(presenter.regenerate(slot, VOTER)))
    assert view.notice == NOTHING_TO_REGENERATE and view.panes == ([], [])


def test_a_refused_question_is_a_sentence_and_draws_the_battle(battles: BattleService) -> None:
    presenter = BattlePresenter(battles, named=False)
    slot = Slot()
    [view] = asyncio.run(drain(presenter.send(slot, "   ", VOTER)))
    assert view.warning == view.notice == "Please type a message first."
    assert slot.battle is not None and slot.battle.mode is BattleMode.ANONYMOUS


def test_an_errored_round_says_so_and_cannot_be_voted_on(battles: BattleService) -> None:
    presenter = BattlePresenter(battles, named=False)
    slot = pick(Slot(), "demo-base", "too-long")
    *_, final = asyncio.run(drain(presenter.send(slot, "Hello", VOTER)))
    assert final.notice == ROUND_ERROR and final.votable is False


def test_named_picks_before_the_first_question_start_a_new_battle(battles: BattleService) -> None:
    presenter = BattlePresenter(battles, named=True)
    assert presenter.choices() == battles.available()
    slot = Slot()
    asyncio.run(drain(presenter.send(slot, "", VOTER, ("demo-base", "demo-lora-a"))))  # refused: empty
    first = slot.battle
    assert first is not None and first.models == {Side.A: "demo-base", Side.B: "demo-lora-a"}
    views = asyncio.run(drain(presenter.send(slot, "Hello", VOTER, ("demo-lora-b", "demo-base"))))
    battle = slot.battle
    assert battle is not None and battle is not first
    assert battle.models == {Side.A: "demo-lora-b", Side.B: "demo-base"}
    assert isinstance(views[0].reveal, str) and "**Model A** was **demo-lora-b**" in views[0].reveal
    # after a question the battle keeps its pair, whatever the pickers say now
    asyncio.run(drain(presenter.send(slot, "More?", VOTER, ("demo-base", "demo-base"))))
    assert slot.battle is battle and battle.turns == 2
    voted = asyncio.run(presenter.vote(slot, Outcome.TIE, VOTER))
    assert voted.notice == THANKS and voted.vote_note == ""  # a named battle's votes were never anonymous


def test_new_round_waits_for_the_answers_then_draws_a_fresh_blind_pair(battles: BattleService) -> None:
    presenter = BattlePresenter(battles, named=False)
    slot = pick(Slot(), "demo-base", "demo-lora-a")

    async def during_a_round() -> BattleView:
        views = presenter.send(slot, "Tell me a story", VOTER)
        await anext(views)
        refused = presenter.new_round(slot, VOTER)
        await drain(views)
        return refused

    refused = asyncio.run(during_a_round())
    assert refused.warning == refused.notice == WAIT_FOR_ANSWERS
    before = slot.battle
    fresh = presenter.new_round(slot, VOTER)
    assert slot.battle is not None and slot.battle is not before and slot.battle.turns == 0
    assert (fresh.box, fresh.notice, fresh.reveal, fresh.votable) == ("", "", "", False)
    named = BattlePresenter(battles, named=True)
    assert named.new_round(slot, VOTER).panes == ([], []) and slot.battle is None  # named: the pickers decide


def test_after_stop_renders_the_stored_round_and_keeps_a_vote_that_landed_first(battles: BattleService) -> None:
    presenter = BattlePresenter(battles, named=False, stop_wait_seconds=5.0)
    slot = pick(Slot(), "demo-base", "demo-lora-b")
    asyncio.run(drain(presenter.send(slot, "Hi", VOTER)))
    view = asyncio.run(presenter.after_stop(slot))
    assert view.votable is True and view.notice == "" and view.box == ""
    asyncio.run(presenter.vote(slot, Outcome.B, VOTER))
    kept = asyncio.run(presenter.after_stop(slot))
    assert kept.notice is KEEP and kept.reveal is KEEP, "a voted round keeps the vote's thanks and reveal"
    assert presenter.current(slot).panes == kept.panes
