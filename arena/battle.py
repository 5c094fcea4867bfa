"""The battle service: pair two models, stream both answers at once, store each round, take one vote per round."""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import AsyncGenerator, Callable, Mapping

from arena.config import AppConfig
from arena.domain import BattleState, Contestant, Outcome, Reply, ReplyStatus, Side, Voter
from arena.errors import InputRejected, VoteRefused
from arena.replies import stream_reply
from arena.sampling import pick_pair
from arena.store.repository import DuplicateVote, Repository, UnknownBattle
from arena.text import clean_user_message
from backends.base import Backend, Message

log = logging.getLogger(__name__)
INTERRUPTED = "The answer was interrupted."


class BattleService:
    """Runs battles for the UI; every rule about when a message or a vote is allowed lives here."""

    def __init__(
        self,
        *,
        config: AppConfig,
        backends: Mapping[str, Backend],
        repo: Repository,
        rng: random.Random,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self._config = config
        self._backends = backends
        self._repo = repo
        self._rng = rng
        self._new_id = new_id

    def new_battle(self, voter: Voter) -> BattleState:
        """A fresh anonymous battle between two sampled models (nothing stored until the first question)."""
        weights = {
            m.name: m.weight
            for m in self._config.models
            if m.name in self._backends and self._backends[m.name].available
        }
        a, b = pick_pair(weights, self._rng)
        return BattleState(models={Side.A: a, Side.B: b}, session_id=voter.session_id)

    def contestants(self, state: BattleState) -> dict[Side, Contestant]:
        """What may be shown about each side once the battle is revealed."""
        out = {}
        for side, name in state.models.items():
            m = self._config.model(name)
            out[side] = Contestant(name=m.name, description=m.description, license=m.license)
        return out

    async def ask(self, state: BattleState, text: object, voter: Voter) -> AsyncGenerator[BattleState, None]:
        """Send a message to both sides and yield the state as their answers stream in."""
        self._check_can_ask(state, voter)
        message = clean_user_message(text, max_chars=self._config.arena.max_input_chars)
        if state.battle_id is None:
            battle_id = self._new_id()
            await asyncio.to_thread(
                self._repo.create_battle, battle_id=battle_id, models=state.models, anonymous=True, voter=voter
            )
            state.battle_id = battle_id
        for side in Side:
            state.histories[side].append(Message(role="user", content=message))
        state.replies = {Side.A: Reply(), Side.B: Reply()}
        state.streaming = True
        changed = asyncio.Event()
        tasks = [
            asyncio.create_task(
                stream_reply(
                    self._backends[state.models[side]],
                    list(state.histories[side]),
                    self._config.model(state.models[side]).generation,
                    state.replies[side],
                    changed,
                )
            )
            for side in Side
        ]
        try:
            while True:
                await changed.wait()
                changed.clear()
                finished = all(t.done() for t in tasks)
                if finished:
                    break
                yield state
        finally:
            for t in tasks:
                t.cancel()
            await self._finish_round(state, message)
        yield state

    def _check_can_ask(self, state: BattleState, voter: Voter) -> None:
        if state.session_id != voter.session_id:
            raise InputRejected("This battle belongs to another session. Please start a new round.")
        if state.streaming:
            raise InputRejected("Please wait until both answers are finished.")
        if state.errored:
            raise InputRejected("This round ended with an error. Please start a new round.")
        if state.turns >= self._config.arena.max_turns:
            raise InputRejected(
                f"This battle has reached its limit of {self._config.arena.max_turns} rounds. Please start a new round."
            )

    async def _finish_round(self, state: BattleState, message: str) -> None:
        """Close the round: interrupted answers become errors, the round is stored, histories move on."""
        for reply in state.replies.values():
            if reply.status is ReplyStatus.STREAMING:
                reply.status, reply.error = ReplyStatus.ERROR, INTERRUPTED
        turn_index = state.turns
        assert state.battle_id is not None
        params = {s: self._config.model(state.models[s]).generation.model_dump(mode="json") for s in Side}
        try:
            # shielded: a cancelled stream (the user left) must still leave a complete round in the DB
            await asyncio.shield(
                asyncio.to_thread(
                    self._repo.record_battle_turn,
                    battle_id=state.battle_id,
                    turn_index=turn_index,
                    user_text=message,
                    replies=dict(state.replies),
                    params=params,
                )
            )
        finally:
            for side, reply in state.replies.items():
                state.histories[side].append(Message(role="assistant", content=reply.text))
            state.turns += 1
            state.streaming = False
            state.errored = state.errored or any(r.status is ReplyStatus.ERROR for r in state.replies.values())

    async def vote(self, state: BattleState, outcome: Outcome, voter: Voter) -> dict[Side, Contestant]:
        """Record a vote on the last round and reveal both models."""
        if state.session_id != voter.session_id:
            raise VoteRefused("This battle belongs to another session, so you cannot vote on it.")
        if state.streaming:
            raise VoteRefused("Please wait until both answers are finished before voting.")
        if state.turns == 0:
            raise VoteRefused("Ask a question first: there is nothing to vote on yet.")
        if state.errored:
            raise VoteRefused("This round ended with an error, so it cannot be voted on. Please start a new round.")
        turn_index = state.turns - 1
        if turn_index in state.voted_turns:
            raise VoteRefused("You already voted on this round. Ask a follow-up or start a new round.")
        assert state.battle_id is not None
        try:
            await asyncio.to_thread(
                self._repo.record_vote,
                battle_id=state.battle_id,
                turn_index=turn_index,
                outcome=outcome,
                anonymous=state.anonymous and not state.revealed,
                voter=voter,
            )
        except DuplicateVote:
            state.voted_turns.add(turn_index)
            raise VoteRefused("You already voted on this round. Ask a follow-up or start a new round.") from None
        except UnknownBattle:
            raise VoteRefused("This battle can no longer be voted on. Please start a new round.") from None
        state.voted_turns.add(turn_index)
        state.revealed = True
        return self.contestants(state)
