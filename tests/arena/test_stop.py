"""Stop, as the UI calls it: from another thread, while real models stream; the stopped round is stored and usable.

One side of each battle is a real tiny model generating a long answer, the other a real TGI-protocol server that
sends two tokens and then stalls for an hour: the round can only end because Stop ends it.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from arena.battle import BattleService
from arena.chat import ChatService
from arena.config import AppConfig, parse_config
from arena.domain import BattleState, ChatState, Outcome, ReplyStatus, Side, Voter
from arena.matchmaking import Matchmaker
from arena.store.facade import AsyncStore
from arena.store.repository import Repository
from backends.base import Backend
from backends.local import LocalBackend
from backends.tgi import TgiBackend
from tests.arena.test_battle import guards
from tests.support.faults import FaultServer
from tests.support.store_reads import reads

VOTER = Voter(session_id="stop-1", ip_hash="iphash")
LONG = 1500  # far more tokens than the tests let the model write


@pytest.fixture
def stalled() -> Iterator[FaultServer]:
    server = FaultServer(mode="stall_mid_stream").start()
    yield server
    server.stop()


def with_stalled(config: AppConfig, url: str) -> AppConfig:
    """The demo config plus a TGI model served by `url`; the demo models write up to LONG tokens."""
    entry = {"name": "stalled", "backend": "tgi", "endpoints": [url], "template": "chatml"}
    stalled_model = parse_config({"models": [entry]}, source=Path("stop-test.yaml")).models[0]
    long = [
        m.model_copy(update={"generation": m.generation.model_copy(update={"max_new_tokens": LONG})})
        for m in config.models
    ]
    return config.model_copy(update={"models": [*long, stalled_model]})


def backends_with(local: dict[str, LocalBackend], url: str) -> dict[str, Backend]:
    return {**local, "stalled": TgiBackend(name="stalled", urls=[url], template="chatml")}


def battles_with_stalled(
    demo_config: AppConfig, local: dict[str, LocalBackend], repo: Repository, stalled: FaultServer
) -> BattleService:
    """A battle service over the demo models plus `stalled`, a TGI peer that sends two tokens then hangs."""
    config = with_stalled(demo_config, stalled.url)
    return BattleService(
        config=config,
        backends=backends_with(local, stalled.url),
        store=AsyncStore(repo),
        matchmaker=Matchmaker(config, random.Random(1), repo.pair_outcomes),
        guards=guards(config),
    )


def stop_from_a_thread(stop: object, state: object) -> None:
    """What Gradio does with a sync handler: run it in a worker thread."""
    thread = threading.Thread(target=stop, args=(state,))  # type: ignore[arg-type]
    thread.start()
    thread.join()


async def ask_all(service: BattleService, state: BattleState, text: str) -> None:
    async for _ in service.ask(state, text, VOTER):
        pass


def test_stop_from_another_thread_ends_both_streams_and_the_stopped_round_is_stored_and_votable(
    demo_config: AppConfig, local_backends: dict[str, LocalBackend], repo: Repository, stalled: FaultServer
) -> None:
    service = battles_with_stalled(demo_config, local_backends, repo, stalled)
    state = BattleState(models={Side.A: "demo-lora-a", Side.B: "stalled"}, session_id=VOTER.session_id)

    async def scenario() -> tuple[str, str]:
        seen: tuple[str, str] = ("", "")
        async for current in service.ask(state, "Raconte une très longue histoire.", VOTER):
            a, b = current.replies[Side.A], current.replies[Side.B]
            if current.streaming and not current.stop_requested and a.tokens >= 3 and b.tokens >= 2:
                stop_from_a_thread(service.stop, current)
            seen = (a.text, b.text)
        return seen

    last_seen = asyncio.run(scenario())  # ends only because Stop ended the stalled side
    replies = state.replies
    assert replies[Side.B].status is ReplyStatus.STOPPED
    assert replies[Side.A].status in {ReplyStatus.STOPPED, ReplyStatus.OK}
    assert replies[Side.A].tokens < LONG, "the model kept generating after Stop"
    assert last_seen == (replies[Side.A].text, replies[Side.B].text), "the last update was not the stored round"
    assert not state.streaming and state.votable
    assert state.battle_id is not None
    stored = reads(repo).battle(state.battle_id)
    assert stored is not None
    for side in Side:
        [question, answer] = stored.conversations[side]
        assert question.content == "Raconte une très longue histoire."
        assert answer.content == replies[side].text and answer.token_count == replies[side].tokens
    assert stored.conversations[Side.B][1].status == "stopped"

    contestants = asyncio.run(service.vote(state, Outcome.A, VOTER))
    assert contestants[Side.B].name == "stalled"
    [vote] = reads(repo).votes()
    assert vote.battle_id == state.battle_id and vote.outcome is Outcome.A
    stored_after = reads(repo).battle(state.battle_id)
    assert stored_after is not None and stored_after.status == "voted"
    assert [m.content for m in stored_after.conversations[Side.A]] == [question.content, replies[Side.A].text]


def test_stop_before_any_token_and_a_closed_page_still_leave_a_stored_round(
    demo_config: AppConfig, local_backends: dict[str, LocalBackend], repo: Repository, stalled: FaultServer
) -> None:
    service = battles_with_stalled(demo_config, local_backends, repo, stalled)
    state = BattleState(models={Side.A: "stalled", Side.B: "stalled"}, session_id=VOTER.session_id)

    async def abandoned() -> None:
        stream = service.ask(state, "Bonjour", VOTER)
        await anext(stream)
        await stream.aclose()  # the page closed (Gradio closes the event's generator)

    asyncio.run(abandoned())
    assert not state.streaming and state.votable and state.turns == 1

    async def stopped_at_once() -> None:
        updates = asyncio.create_task(ask_all(service, state, "Encore"))
        await asyncio.sleep(0)  # the send runs up to its first wait: claimed, its round not streaming yet
        assert state.streaming
        stop_from_a_thread(service.stop, state)
        await updates

    asyncio.run(stopped_at_once())
    assert state.turns == 2 and state.votable
    assert state.battle_id is not None
    stored = reads(repo).battle(state.battle_id)
    assert stored is not None
    assert [m.status for m in stored.conversations[Side.A] if m.role == "assistant"] == ["stopped", "stopped"]


def test_chat_stop_from_another_thread_ends_the_answer_and_it_can_be_rated(
    demo_config: AppConfig, local_backends: dict[str, LocalBackend], repo: Repository, stalled: FaultServer
) -> None:
    config = with_stalled(demo_config, stalled.url)
    chats = ChatService(
        config=config,
        backends=backends_with(local_backends, stalled.url),
        store=AsyncStore(repo),
        guards=guards(config),
    )
    for model in ("stalled", "demo-lora-b"):
        state: ChatState = chats.new_chat(model, VOTER)

        async def scenario(state: ChatState = state) -> str:
            seen = ""
            async for current in chats.ask(state, "Raconte une très longue histoire.", VOTER):
                assert current.reply is not None
                if current.streaming and not current.stop_requested and current.reply.tokens >= 2:
                    stop_from_a_thread(chats.stop, current)
                seen = current.reply.text
            return seen

        last_seen = asyncio.run(scenario())
        assert state.reply is not None and not state.streaming
        assert state.reply.tokens < LONG
        if model == "stalled":
            assert state.reply.status is ReplyStatus.STOPPED
        assert last_seen == state.reply.text == state.history[-1]["content"]
        assert state.conversation_id is not None
        stored = reads(repo).conversation(state.conversation_id)
        assert [(m.role, m.content) for m in stored][-1] == ("assistant", state.reply.text)
        asyncio.run(chats.feedback(state, 0, True, [], "", VOTER))
    assert len(reads(repo).feedback()) == 2
