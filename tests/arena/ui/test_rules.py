"""The rules the battle and chat tabs used to decide themselves, now on the domain states (pure)."""

from __future__ import annotations

from arena.domain import BattleMode, BattleState, ChatState, Side


def battle(mode: BattleMode, *, turns: int = 0) -> BattleState:
    return BattleState(models={Side.A: "x", Side.B: "y"}, session_id="s", mode=mode, turns=turns)


def test_a_named_battle_follows_the_pickers_only_before_its_first_question() -> None:
    named = battle(BattleMode.NAMED)
    assert not named.repicked("x", "y") and named.repicked("y", "x") and named.repicked("x", None)
    assert not battle(BattleMode.NAMED, turns=1).repicked("y", "x")
    assert not battle(BattleMode.ANONYMOUS).repicked("y", "x")  # a blind battle has no pickers


def test_a_voted_round_and_a_revealed_blind_battle() -> None:
    st = battle(BattleMode.ANONYMOUS, turns=2)
    assert not st.last_round_voted and not st.unmasked
    st.voted_turns.add(0)
    assert not st.last_round_voted  # an earlier round's vote
    st.voted_turns.add(1)
    st.revealed = True
    assert st.last_round_voted and st.unmasked
    named = battle(BattleMode.NAMED, turns=1)
    named.revealed = True
    assert not named.unmasked  # its votes were never anonymous: nothing changed by the reveal


def test_chat_answers_are_numbered_as_shown_and_only_stored_ones_rate() -> None:
    st = ChatState(model="x", session_id="s", message_ids={0: 11, 2: 13})
    assert [st.answer_number(t) for t in (0, 2)] == [1, 2]
    assert st.rateable(2) and not st.rateable(3)
    assert st.switches_to("y") and not st.switches_to("x")
