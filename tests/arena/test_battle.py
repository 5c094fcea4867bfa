"""The battle service with real tiny models and a real SQLite file."""

from __future__ import annotations

import asyncio
import random

import pytest

from arena.battle import BattleService
from arena.config import AppConfig
from arena.domain import BattleState, Outcome, ReplyStatus, Side, Voter
from arena.errors import InputRejected, VoteRefused
from arena.store.repository import Repository
from backends.local import LocalBackend

VOTER = Voter(session_id="sess-1", ip_hash="iphash")


@pytest.fixture
def service(demo_config: AppConfig, local_backends: dict[str, LocalBackend], repo: Repository) -> BattleService:
    return BattleService(config=demo_config, backends=local_backends, repo=repo, rng=random.Random(3))


def pair(a: str, b: str) -> BattleState:
    return BattleState(models={Side.A: a, Side.B: b}, session_id=VOTER.session_id)


async def ask_all(service: BattleService, state: BattleState, text: str) -> list[tuple[str, str]]:
    """Run one round; return the pane texts seen at each update."""
    return [(s.replies[Side.A].text, s.replies[Side.B].text) async for s in service.ask(state, text, VOTER)]


def test_round_streams_both_sides_then_vote_reveals_and_stores(service: BattleService, repo: Repository) -> None:
    state = pair("demo-lora-a", "demo-lora-b")
    updates = asyncio.run(ask_all(service, state, "Salut !"))
    assert len(updates) > 2
    assert any(a and b for a, b in updates[:-1]), "both panes should show text before the round ends"
    assert state.votable and state.turns == 1
    contestants = asyncio.run(service.vote(state, Outcome.A, VOTER))
    assert (contestants[Side.A].name, contestants[Side.B].name) == ("demo-lora-a", "demo-lora-b")
    assert state.battle_id is not None
    stored = repo.battle(state.battle_id)
    assert stored is not None and stored.status == "voted"
    assert stored.conversations[Side.A][1].content == state.replies[Side.A].text
    assert stored.conversations[Side.B][1].ttft_ms is not None
    [vote] = repo.votes()
    assert vote.outcome is Outcome.A and vote.anonymous and vote.ip_hash == "iphash"


def test_vote_while_streaming_is_refused(service: BattleService, repo: Repository) -> None:
    async def scenario() -> str:
        state = pair("demo-base", "demo-lora-a")
        stream = service.ask(state, "Bonjour", VOTER)
        await anext(stream)
        try:
            await service.vote(state, Outcome.B, VOTER)
        except VoteRefused as exc:
            return str(exc)
        finally:
            async for _ in stream:
                pass
        return "accepted"

    assert asyncio.run(scenario()) == "Please wait until both answers are finished before voting."
    assert repo.votes() == []


def test_second_vote_and_other_session_are_refused(service: BattleService, repo: Repository) -> None:
    state = pair("demo-base", "demo-lora-b")
    asyncio.run(ask_all(service, state, "Hello"))
    with pytest.raises(VoteRefused, match="another session"):
        asyncio.run(service.vote(state, Outcome.A, Voter(session_id="intruder")))
    asyncio.run(service.vote(state, Outcome.TIE, VOTER))
    with pytest.raises(VoteRefused, match="already voted"):
        asyncio.run(service.vote(state, Outcome.A, VOTER))
    assert [v.outcome for v in repo.votes()] == [Outcome.TIE]


def test_follow_up_after_reveal_is_a_named_vote_on_the_next_round(service: BattleService, repo: Repository) -> None:
    state = pair("demo-base", "demo-lora-b")
    asyncio.run(ask_all(service, state, "One"))
    asyncio.run(service.vote(state, Outcome.A, VOTER))
    asyncio.run(ask_all(service, state, "Two"))
    assert state.histories[Side.A][2] == {"role": "user", "content": "Two"}
    asyncio.run(service.vote(state, Outcome.BOTH_BAD, VOTER))
    assert [(v.turn_index, v.anonymous) for v in repo.votes()] == [(0, True), (1, False)]


def test_backend_error_in_one_pane_leaves_the_other_and_blocks_votes(service: BattleService, repo: Repository) -> None:
    state = pair("demo-lora-a", "too-long")
    asyncio.run(ask_all(service, state, "Hi"))
    a, b = state.replies[Side.A], state.replies[Side.B]
    assert a.status is ReplyStatus.OK and a.text
    assert b.status is ReplyStatus.ERROR
    assert b.error == "The conversation is too long for this model. Please start a new round."
    assert state.errored and not state.votable
    with pytest.raises(VoteRefused, match="ended with an error"):
        asyncio.run(service.vote(state, Outcome.A, VOTER))
    with pytest.raises(InputRejected, match="ended with an error"):
        asyncio.run(ask_all(service, state, "again"))
    assert state.battle_id is not None
    stored = repo.battle(state.battle_id)
    assert stored is not None and stored.status == "errored" and repo.votes() == []


def test_bad_messages_send_nothing(service: BattleService, repo: Repository) -> None:
    state = pair("demo-base", "demo-lora-a")
    with pytest.raises(InputRejected, match="type a message first"):
        asyncio.run(ask_all(service, state, "  \n "))
    with pytest.raises(InputRejected, match="the limit is 200"):
        asyncio.run(ask_all(service, state, "x" * 201))
    assert state.battle_id is None and state.turns == 0


def test_turn_limit(service: BattleService) -> None:
    state = pair("demo-base", "demo-lora-a")
    for i in range(3):
        asyncio.run(ask_all(service, state, f"q{i}"))
    with pytest.raises(InputRejected, match="limit of 3 rounds"):
        asyncio.run(ask_all(service, state, "one more"))


def test_cancelled_round_is_stored_as_interrupted(service: BattleService, repo: Repository) -> None:
    async def scenario(state: BattleState) -> None:
        stream = service.ask(state, "Bonjour", VOTER)
        await anext(stream)
        await stream.aclose()  # the browser went away mid-stream

    state = pair("demo-base", "demo-lora-b")
    asyncio.run(scenario(state))
    assert state.battle_id is not None and not state.streaming and state.errored
    stored = repo.battle(state.battle_id)
    assert stored is not None and stored.status == "errored"
    assert {m.role for m in stored.conversations[Side.A]} == {"user", "assistant"}


def test_new_battle_pairs_two_different_configured_models(service: BattleService) -> None:
    for _ in range(20):
        state = service.new_battle(VOTER)
        assert state.models[Side.A] != state.models[Side.B]
