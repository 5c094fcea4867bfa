"""The battle service: pair two models, stream both answers at once, store each round, take one vote per round."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from arena.config import AppConfig
from arena.domain import BattleState, Contestant, Outcome, Reply, ReplyStatus, Side, Voter
from arena.errors import InputRejected, VoteRefused
from arena.language import LanguageDetector
from arena.leaks import LeakDetector
from arena.limits import RateLimiter
from arena.matchmaking import Matchmaker, Matchup
from arena.replies import stream_reply
from arena.sampling import require_two
from arena.store.repository import DuplicateVote, Repository, UnknownBattle
from arena.text import clean_user_message
from backends.base import Backend, Message

log = logging.getLogger(__name__)
NOT_SAVED = "Sorry, this round could not be saved. Please start a new round."
NOT_STARTED = "Sorry, the arena could not start this battle right now. Please try again in a moment."


@dataclass(frozen=True)
class Guards:
    """What protects the arena from strangers and from models that name themselves."""

    leaks: LeakDetector
    limiter: RateLimiter
    language: LanguageDetector


def voter_keys(voter: Voter) -> list[str]:
    """Rate-limit keys of a voter: the browser session and the (hashed) IP."""
    return [f"session:{voter.session_id}", *([f"ip:{voter.ip_hash}"] if voter.ip_hash else [])]


class BattleService:
    """Runs battles for the UI; every rule about when a message or a vote is allowed lives here."""

    def __init__(
        self,
        *,
        config: AppConfig,
        backends: Mapping[str, Backend],
        repo: Repository,
        matchmaker: Matchmaker,
        guards: Guards,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self._config = config
        self._backends = backends
        self._repo = repo
        self._matchmaker = matchmaker
        self._guards = guards
        self._new_id = new_id

    def available(self) -> list[str]:
        """Models that can answer now, in config order."""
        return [m.name for m in self._config.models if m.name in self._backends and self._backends[m.name].available]

    def new_battle(self, voter: Voter) -> BattleState:
        """A fresh anonymous battle (nothing stored until the first question)."""
        up = self.available()
        require_two(up)
        return self._state(self._matchmaker.next(up), voter)

    def new_named_battle(self, voter: Voter, model_a: object, model_b: object) -> BattleState:
        """A battle between two models the user chose (or one model twice); its votes are not anonymous."""
        up = self.available()
        for choice in (model_a, model_b):
            if not isinstance(choice, str) or choice not in [m.name for m in self._config.models]:
                raise InputRejected("Please choose two of the listed models.")
            if choice not in up:
                raise InputRejected(f"{choice} is unavailable right now. Please choose another model.")
        assert isinstance(model_a, str) and isinstance(model_b, str)
        return self._state(self._matchmaker.named(model_a, model_b), voter)

    @staticmethod
    def _state(matchup: Matchup, voter: Voter) -> BattleState:
        return BattleState(models=matchup.models, session_id=voter.session_id, params=matchup.params, mode=matchup.mode)

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
        self._guards.limiter.check_message(voter_keys(voter))
        state.streaming = True  # claimed before the first await: a second send in this session is refused
        try:
            language = await asyncio.to_thread(self._guards.language.detect, message)
            if state.battle_id is None:
                battle_id = self._new_id()
                await asyncio.to_thread(
                    self._repo.create_battle,
                    battle_id=battle_id,
                    models=state.models,
                    voter=voter,
                    mode=state.mode,
                    language=language,
                )
                state.battle_id, state.language = battle_id, language
        except SQLAlchemyError:
            state.streaming = False
            log.exception("could not store a new battle")
            raise InputRejected(NOT_STARTED) from None
        except BaseException:
            state.streaming = False
            raise
        for side in Side:
            state.histories[side].append(Message(role="user", content=message))
        state.last_question, state.turn_language = message, language
        async for current in self._round(state, regenerated=False):
            yield current

    async def regenerate(self, state: BattleState, voter: Voter) -> AsyncGenerator[BattleState, None]:
        """Answer the last question again on both sides; the replaced answers stay in the DB as superseded."""
        if state.session_id != voter.session_id:
            raise InputRejected("This battle belongs to another session. Please start a new round.")
        if state.turns == 0:
            raise InputRejected("Ask a question first: there is nothing to regenerate yet.")
        if state.streaming:
            raise InputRejected("Please wait until both answers are finished.")
        if state.errored:
            raise InputRejected("This round ended with an error. Please start a new round.")
        if state.turns - 1 in state.voted_turns:  # also while a vote on it is being written
            raise InputRejected("You already voted on this round, so it can no longer be regenerated.")
        self._guards.limiter.check_message(voter_keys(voter))
        for side in Side:
            state.histories[side].pop()  # the answer being replaced
        state.turns -= 1
        async for current in self._round(state, regenerated=True):
            yield current

    def stop(self, state: BattleState | None) -> None:
        """Mark the running round as stopped by the user (the UI then cancels the stream)."""
        if state is not None and state.streaming:
            state.stop_requested = True

    async def _round(self, state: BattleState, *, regenerated: bool) -> AsyncGenerator[BattleState, None]:
        state.replies = {Side.A: Reply(), Side.B: Reply()}
        state.streaming, state.stop_requested = True, False
        changed = asyncio.Event()
        tasks = [
            asyncio.create_task(
                stream_reply(
                    self._backends[state.models[side]],
                    list(state.histories[side]),
                    state.params.get(side) or self._config.model(state.models[side]).generation,
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
                self._check_leak(state)
                if all(t.done() for t in tasks):
                    break
                yield state
        except (asyncio.CancelledError, GeneratorExit):
            # Only Stop (Gradio cancels the event) or a closed page cancels a round: keep what was written.
            state.stop_requested = True
            raise
        finally:
            for t in tasks:
                t.cancel()
            await self._finish_round(state, regenerated=regenerated)
        yield state

    def _check_leak(self, state: BattleState) -> None:
        if state.identity_leak is None:
            state.identity_leak = self._guards.leaks.find_in(r.text for r in state.replies.values())

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

    async def _finish_round(self, state: BattleState, *, regenerated: bool) -> None:
        """Close the round: stopped answers stay votable; store it; move on (a failed write closes the battle)."""
        for reply in state.replies.values():
            if reply.status is ReplyStatus.STREAMING:
                reply.status = ReplyStatus.STOPPED
        self._check_leak(state)
        assert state.battle_id is not None
        params = {s: (state.params.get(s) or self._config.model(state.models[s]).generation) for s in Side}
        try:
            # shielded: a cancelled stream (the user left) must still leave a complete round in the DB
            await asyncio.shield(
                asyncio.to_thread(
                    self._repo.record_battle_turn,
                    battle_id=state.battle_id,
                    turn_index=state.turns,
                    user_text=state.last_question,
                    replies=dict(state.replies),
                    params={s: p.model_dump(mode="json") for s, p in params.items()},
                    language=state.turn_language,
                    identity_leak=state.identity_leak is not None,
                    regenerated=regenerated,
                )
            )
        except SQLAlchemyError:
            log.exception("could not store a battle round")
            for reply in state.replies.values():
                reply.status, reply.error = ReplyStatus.ERROR, NOT_SAVED
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
        self._guards.limiter.check_vote(voter_keys(voter))
        assert state.battle_id is not None
        state.voted_turns.add(turn_index)  # reserved before the await: no regenerate or second vote meanwhile
        try:
            await asyncio.to_thread(
                self._repo.record_vote,
                battle_id=state.battle_id,
                turn_index=turn_index,
                outcome=outcome,
                anonymous=state.anonymous,
                voter=voter,
                identity_leak=state.identity_leak is not None,
                language=state.turn_language,
            )
        except DuplicateVote:
            raise VoteRefused("You already voted on this round. Ask a follow-up or start a new round.") from None
        except UnknownBattle:
            state.voted_turns.discard(turn_index)
            raise VoteRefused("This battle can no longer be voted on. Please start a new round.") from None
        except SQLAlchemyError:
            state.voted_turns.discard(turn_index)
            log.exception("could not store a vote")
            raise VoteRefused("Sorry, your vote could not be saved right now. Please try again.") from None
        state.revealed = True
        return self.contestants(state)


def leak_notice(state: BattleState) -> str:
    """The sentence shown when an answer revealed a model's identity."""
    if state.identity_leak is None:
        return ""
    return (
        "⚠️ An answer names a model, so your vote on this battle will be kept "
        "but will not count towards the leaderboard."
    )
