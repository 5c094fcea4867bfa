"""The chat service with real tiny models and a real SQLite file: turns, regenerate, feedback."""

from __future__ import annotations

import asyncio

import pytest

from arena.chat import ChatService
from arena.config import AppConfig
from arena.domain import ChatState, Voter
from arena.errors import InputRejected
from arena.store.facade import AsyncStore
from arena.store.repository import Repository
from backends.local import LocalBackend
from tests.arena.test_battle import guards
from tests.support.store_reads import reads

VOTER = Voter(session_id="chat-1", ip_hash="h")


@pytest.fixture
def chats(demo_config: AppConfig, local_backends: dict[str, LocalBackend], repo: Repository) -> ChatService:
    return ChatService(config=demo_config, backends=local_backends, store=AsyncStore(repo), guards=guards(demo_config))


async def run(stream: object) -> None:
    async for _ in stream:  # type: ignore[attr-defined]
        pass


def test_turns_are_stored_and_feedback_attaches_to_an_answer(chats: ChatService, repo: Repository) -> None:
    state = chats.new_chat("demo-lora-a", VOTER)
    asyncio.run(run(chats.ask(state, "Bonjour", VOTER)))
    asyncio.run(run(chats.ask(state, "Et toi ?", VOTER)))
    assert [m["role"] for m in state.history] == ["user", "assistant", "user", "assistant"]
    asyncio.run(chats.feedback(state, 1, False, ["wrong", "not a tag"], "  trop court \x00 ", VOTER))
    [fb] = reads(repo).feedback()
    assert (fb.rating, fb.tags, fb.comment) == ("down", ["wrong"], "trop court")
    assert fb.message_id == state.message_ids[1]
    # the same answer rated again by the same session changes the one stored row
    asyncio.run(chats.feedback(state, 1, True, [], "", VOTER))
    [fb] = reads(repo).feedback()
    assert (fb.rating, fb.tags, fb.comment) == ("up", [], None)
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
    stored = [(m.role, m.status) for m in reads(repo).conversation(state.conversation_id)]
    assert stored == [("user", "ok"), ("assistant", "superseded"), ("assistant", "ok")]
    assert reads(repo).conversation(state.conversation_id)[1].content == first


def test_nothing_to_regenerate_or_rate_yet(chats: ChatService) -> None:
    state: ChatState = chats.new_chat("demo-base", VOTER)
    with pytest.raises(InputRejected, match="nothing to regenerate"):
        asyncio.run(run(chats.regenerate(state, VOTER)))
    with pytest.raises(InputRejected, match="cannot be rated"):
        asyncio.run(chats.feedback(state, 0, True, [], "", VOTER))
    with pytest.raises(InputRejected, match="choose one of the listed models"):
        chats.new_chat("ghost", VOTER)


def test_a_click_stores_the_rating_at_once_and_reasons_update_the_same_row(
    chats: ChatService, repo: Repository
) -> None:
    state = chats.new_chat("demo-lora-b", VOTER)
    asyncio.run(run(chats.ask(state, "Bonjour", VOTER)))
    asyncio.run(run(chats.ask(state, "Encore ?", VOTER)))
    first, second = chats.answer_turn(state, 1), chats.answer_turn(state, 2)
    assert chats.answer_turn(state, None) == chats.answer_turn(state, " ") == second  # empty: the last answer
    assert chats.answer_turn(state, " 1 ") == chats.answer_turn(state, 1.0) == first  # as typed in the form

    asyncio.run(chats.rate(state, first, True, VOTER))  # the thumb: stored before any reason is given
    assert [(f.message_id, f.rating, f.tags, f.comment) for f in reads(repo).feedback()] == [
        (state.message_ids[first], "up", [], None)
    ]
    asyncio.run(chats.feedback(state, first, True, ["too long"], "un peu long", VOTER))  # reasons afterwards
    asyncio.run(chats.rate(state, first, False, VOTER))  # the other thumb: the rating changes, the reasons stay
    [fb] = reads(repo).feedback()
    assert (fb.message_id, fb.rating, fb.tags, fb.comment) == (
        state.message_ids[first],
        "down",
        ["too long"],
        "un peu long",
    )

    asyncio.run(chats.rate(state, second, True, VOTER))
    assert [(f.message_id, f.rating) for f in reads(repo).feedback()] == [
        (state.message_ids[first], "down"),
        (state.message_ids[second], "up"),
    ]
    # a conversation is rated only by its own session: another one stores nothing
    with pytest.raises(InputRejected, match="no answer to rate"):
        asyncio.run(chats.rate(state, second, True, Voter(session_id="chat-2")))
    assert len(reads(repo).feedback()) == 2


def test_with_answers_on_screen_the_rating_never_says_there_is_none(chats: ChatService) -> None:
    state = chats.new_chat("demo-base", VOTER)
    with pytest.raises(InputRejected, match="There is no answer to rate here yet"):
        chats.answer_turn(state, 1)  # truly nothing on screen
    with pytest.raises(InputRejected, match="There is no answer to rate here yet"):
        chats.answer_turn(None, None)
    asyncio.run(run(chats.ask(state, "Hello", VOTER)))
    for number, message in [
        (3, "There is no answer 3 here: the answers are numbered 1."),
        (0, "There is no answer 0 here"),
        ("3", "There is no answer 3 here"),
        (1.5, "Please give the answer's number"),
        ("x", "Please give the answer's number"),
        ("-1", "Please give the answer's number"),
        (True, "Please give the answer's number"),
    ]:
        with pytest.raises(InputRejected, match=message) as refused:
            chats.answer_turn(state, number)
        assert "no answer to rate" not in str(refused.value)
    with pytest.raises(InputRejected, match="Please choose Good answer or Bad answer"):
        asyncio.run(chats.feedback(state, chats.answer_turn(state, 1), None, [], "", VOTER))
    # the first answer still streaming: the question and a partial answer are on screen
    streaming = ChatState(model="demo-base", session_id=VOTER.session_id, history=[{"role": "user", "content": "Hi"}])
    streaming.streaming = True
    with pytest.raises(InputRejected, match="Please wait until the answer is finished, then rate it"):
        chats.answer_turn(streaming, None)


def test_a_failed_answer_on_screen_is_named_as_such(chats: ChatService) -> None:
    state = chats.new_chat("too-long", VOTER)  # its requests never fit the context: the answer is an error
    asyncio.run(run(chats.ask(state, "Hello", VOTER)))
    assert state.reply is not None and state.reply.error
    with pytest.raises(InputRejected, match="ended with an error") as refused:
        chats.answer_turn(state, None)
    assert "no answer to rate" not in str(refused.value)
