"""The chat service with real tiny models and a real SQLite file: turns, regenerate, feedback."""

from __future__ import annotations

import asyncio

import pytest

from arena.chat import ChatService
from arena.config import AppConfig
from arena.domain import ChatState, Voter
from arena.errors import InputRejected
from arena.store.repository import Repository
from backends.local import LocalBackend
from tests.arena.test_battle import guards

VOTER = Voter(session_id="chat-1", ip_hash="h")


@pytest.fixture
def chats(demo_config: AppConfig, local_backends: dict[str, LocalBackend], repo: Repository) -> ChatService:
    return ChatService(config=demo_config, backends=local_backends, repo=repo, guards=guards(demo_config))


async def run(stream: object) -> None:
    async for _ in stream:  # type: ignore[attr-defined]
        pass


def test_turns_are_stored_and_feedback_attaches_to_an_answer(chats: ChatService, repo: Repository) -> None:
    state = chats.new_chat("demo-lora-a", VOTER)
    asyncio.run(run(chats.ask(state, "Bonjour", VOTER)))
    asyncio.run(run(chats.ask(state, "Et toi ?", VOTER)))
    assert [m["role"] for m in state.history] == ["user", "assistant", "user", "assistant"]
    asyncio.run(chats.feedback(state, 1, False, ["wrong", "not a tag"], "  trop court \x00 ", VOTER))
    [fb] = repo.feedback()
    assert (fb.rating, fb.tags, fb.comment) == ("down", ["wrong"], "trop court")
    assert fb.message_id == state.message_ids[1]
    with pytest.raises(InputRejected, match="already rated"):
        asyncio.run(chats.feedback(state, 1, True, [], "", VOTER))
    with pytest.raises(InputRejected, match="no answer to rate"):
        asyncio.run(chats.feedback(state, 1, True, [], "", Voter(session_id="someone-else")))
    with pytest.raises(InputRejected, match="cannot be rated"):
        asyncio.run(chats.feedback(state, 7, True, [], "", VOTER))


def test_regenerate_supersedes_the_last_answer(chats: ChatService, repo: Repository) -> None:
    state = chats.new_chat("demo-base", VOTER)
    asyncio.run(run(chats.ask(state, "Hello", VOTER)))
    first = state.history[-1]["content"]
    asyncio.run(run(chats.regenerate(state, VOTER)))
    assert len(state.history) == 2 and state.turns == 1
    assert state.conversation_id is not None
    stored = [(m.role, m.status) for m in repo.conversation(state.conversation_id)]
    assert stored == [("user", "ok"), ("assistant", "superseded"), ("assistant", "ok")]
    assert repo.conversation(state.conversation_id)[1].content == first


def test_nothing_to_regenerate_or_rate_yet(chats: ChatService) -> None:
    state: ChatState = chats.new_chat("demo-base", VOTER)
    with pytest.raises(InputRejected, match="nothing to regenerate"):
        asyncio.run(run(chats.regenerate(state, VOTER)))
    with pytest.raises(InputRejected, match="cannot be rated"):
        asyncio.run(chats.feedback(state, 0, True, [], "", VOTER))
    with pytest.raises(InputRejected, match="choose one of the listed models"):
        chats.new_chat("ghost", VOTER)
