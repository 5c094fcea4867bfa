"""The Chat tab's presenter with the real chat service, the demo models and a SQLite file: no browser."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from arena.chat import ChatService
from arena.domain import Voter
from arena.text import ERROR_MARK
from arena.ui.chat_presenter import BAD, GOOD, NOT_RATEABLE, WAIT_FOR_ANSWER, ChatPresenter, ChatView, Cleared, Slot
from arena.ui.common import KEEP
from tests.support.store_reads import StoreReads

VOTER = Voter(session_id="ui-chat-1", ip_hash="h")


async def drain(views: AsyncGenerator[ChatView, None]) -> list[ChatView]:
    return [v async for v in views]


def test_a_turn_streams_and_a_thumb_then_the_form_rate_one_stored_answer(
    chats: ChatService, stored: StoreReads
) -> None:
    presenter = ChatPresenter(chats)
    slot = Slot()
    views = asyncio.run(drain(presenter.send(slot, "demo-base", "Bonjour", VOTER)))
    assert len(views) > 1 and all(v.box == "" and v.notice == "" for v in views)
    assert [m["role"] for m in views[-1].messages] == ["user", "assistant"]

    liked = asyncio.run(presenter.like(slot, 1, True, "", ["wrong"], "typed", VOTER))
    assert (liked.rating, liked.answer, liked.tags, liked.comment) == (GOOD, "1", [], "")  # another answer: reset
    assert liked.status.startswith("Saved: answer 1 is rated *Good answer*.") and liked.warning is None
    again = asyncio.run(presenter.like(slot, 1, False, "1", ["wrong"], "typed", VOTER))
    assert (again.rating, again.tags, again.comment) == (BAD, ["wrong"], "typed")  # the same answer: kept
    [fb] = stored.feedback()
    assert fb.rating == "down"

    saved = asyncio.run(presenter.feedback(slot, GOOD, "", ["wrong"], "a comment", VOTER))
    assert saved.status == "Thanks for your feedback: answer 1 is rated *Good answer*." and saved.answer == "1"
    [fb] = stored.feedback()
    assert (fb.rating, fb.tags, fb.comment) == ("up", ["wrong"], "a comment")


def test_unrated_thumbs_failed_answers_and_empty_forms_are_sentences(chats: ChatService) -> None:
    presenter = ChatPresenter(chats)
    slot = Slot()
    nothing = asyncio.run(presenter.feedback(slot, GOOD, "", [], "", VOTER))
    assert nothing.warning == nothing.status == "There is no answer to rate here yet." and nothing.answer is KEEP
    views = asyncio.run(drain(presenter.send(slot, "too-long", "Hello", VOTER)))
    failed = views[-1].messages
    assert failed[0] == {"role": "user", "content": "Hello"} and ERROR_MARK in failed[-1]["content"]
    refused = asyncio.run(presenter.like(slot, 1, True, "", [], "", VOTER))
    assert refused.status == NOT_RATEABLE and refused.rating is KEEP and refused.answer == "1"
    off = asyncio.run(presenter.like(slot, 1, None, "", [], "", VOTER))
    assert off.status == "Answer 1 keeps any rating already saved; click a thumb to change it."


def test_another_model_starts_a_new_conversation_and_clear_forgets_it(chats: ChatService) -> None:
    presenter = ChatPresenter(chats)
    assert presenter.choices() == [(n, n) for n in chats.model_names()]  # every demo model answers now
    slot = Slot()
    asyncio.run(drain(presenter.send(slot, "demo-base", "One", VOTER)))
    first = slot.chat
    asyncio.run(drain(presenter.send(slot, "demo-lora-a", "Two", VOTER)))
    assert slot.chat is not first and slot.chat is not None and slot.chat.model == "demo-lora-a"
    assert [m["content"] for m in slot.chat.history if m["role"] == "user"] == ["Two"]
    assert presenter.clear(slot) == Cleared(ChatView([], "", ""), emptied=True) and slot.chat is None


def test_nothing_is_left_or_cleared_while_an_answer_streams(chats: ChatService) -> None:
    presenter = ChatPresenter(chats, stop_wait_seconds=5.0)
    slot = Slot()

    async def during_an_answer() -> tuple[Cleared, ChatView]:
        views = presenter.send(slot, "demo-base", "Tell me a story", VOTER)
        await anext(views)
        cleared = presenter.clear(slot)
        [switched] = await drain(presenter.send(slot, "demo-lora-b", "Other", VOTER))
        await drain(views)
        return cleared, switched

    cleared, switched = asyncio.run(during_an_answer())
    assert not cleared.emptied and cleared.view.notice == WAIT_FOR_ANSWER and cleared.view.box is KEEP
    assert switched.warning == switched.notice == WAIT_FOR_ANSWER
    assert slot.chat is not None and slot.chat.model == "demo-base"
    after = asyncio.run(presenter.after_stop(slot))
    assert after.messages[-1]["role"] == "assistant" and after.notice == ""
