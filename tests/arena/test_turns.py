"""What battles and chats share: ownership, rate-limit keys, and when storing a conversation failed."""

from __future__ import annotations

import asyncio

import pytest

from arena.domain import ChatState, Voter
from arena.errors import InputRejected, VoteRefused
from arena.turns import prepare_failed, require_owner, voter_keys


def test_only_the_owning_session_may_act() -> None:
    state = ChatState(model="m", session_id="mine")
    require_owner(state, Voter("mine"), "not yours")
    with pytest.raises(InputRejected, match="not yours"):
        require_owner(state, Voter("theirs"), "not yours")
    with pytest.raises(VoteRefused, match="nothing here"):
        require_owner(None, Voter("mine"), "nothing here", VoteRefused)


def test_voter_keys_name_the_session_and_the_hashed_ip() -> None:
    assert voter_keys(Voter("s")) == ["session:s"]
    assert voter_keys(Voter("s", "h")) == ["session:s", "ip:h"]


def test_prepare_failed_only_once_the_task_ended_badly() -> None:
    async def scenario() -> None:
        async def fail() -> None:
            raise RuntimeError("no row")

        async def succeed() -> str:
            return "French"

        failing, fine = asyncio.create_task(fail()), asyncio.create_task(succeed())
        assert not prepare_failed(failing) and not prepare_failed(None)  # not done yet / nothing to store
        await asyncio.wait({failing, fine})
        assert prepare_failed(failing) and not prepare_failed(fine)

    asyncio.run(scenario())
