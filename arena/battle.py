"""The battle service: pair two models, stream both answers at once, store each round, take one vote per round."""

from __future__ import annotations

import asyncio
import contextlib
import functools
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
from arena.replies import end_replies, stream_reply
from arena.retry import DEFAULT_RETRY, RetryPolicy, retry_write
from arena.rounds import LiveRound, Rounds
from arena.sampling import require_two
from arena.store.repository import DuplicateVote, Repository, UnknownBattle
from arena.text import clean_user_message
from backends.base import Backend, Message

log = logging.getLogger(__name__)
NOT_SAVED = "Sorry, this round could not be saved. Please start a new round."
NOT_STARTED = "Sorry, the arena could not start this battle right now. Please try again in a moment."
VOTE_NOT_SAVED = (
    "Sorry, your vote could not be saved right now: the arena's database is not accepting writes. "
    "Nothing was recorded; please vote again in a minute."
)
ALREADY_VOTED = "You already voted on this round. Ask a follow-up or start a new round."


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
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        self._config = config
        self._backends = backends
        self._repo = repo
        self._matchmaker = matchmaker
        self._guards = guards
        self._new_id = new_id
        self._retry = retry
        self._rounds = Rounds()

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
        # claimed before the first await: a second send in this session is refused
        state.streaming, state.stop_requested = True, False
        for side in Side:
            state.histories[side].append(Message(role="user", content=message))
        state.last_question, state.turn_language = message, None
        # The answers start at once; the language and the battle row are worked out meanwhile (the round waits
        # for them before it is stored), so neither delays the first token.
        prepared = asyncio.create_task(self._prepare(state, voter, message))
        async with contextlib.aclosing(self._round(state, regenerated=False, prepared=prepared)) as updates:
            async for current in updates:
                yield current
        if state.battle_id is None:  # the battle could not be stored: the question was taken back
            raise InputRejected(NOT_STARTED)

    async def _prepare(self, state: BattleState, voter: Voter, message: str) -> bool:
        """Detect the question's language and store the battle if it is new; False if it could not be stored."""
        language = await asyncio.to_thread(self._guards.language.detect, message)
        state.turn_language = language
        if state.battle_id is not None:
            return True
        battle_id = self._new_id()
        create = functools.partial(
            self._repo.create_battle,
            battle_id=battle_id,
            models=state.models,
            voter=voter,
            mode=state.mode,
            language=language,
        )
        try:
            await retry_write(create, what="a new battle", policy=self._retry)
        except SQLAlchemyError:
            log.error("a new battle was not stored")
            return False
        state.battle_id, state.language = battle_id, language
        return True

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
        state.streaming, state.stop_requested = True, False
        for side in Side:
            state.histories[side].pop()  # the answer being replaced
        state.turns -= 1
        async with contextlib.aclosing(self._round(state, regenerated=True, prepared=None)) as updates:
            async for current in updates:
                yield current

    def stop(self, state: BattleState | None) -> None:
        """End the running round now (both answers stopped, the round stored and votable); safe from any thread."""
        self._rounds.stop(state)

    async def wait_until_stored(self, state: BattleState | None) -> None:
        """Wait until the running round of `state`, if any, has ended and is stored (bound it by a timeout)."""
        await self._rounds.wait_until_stored(state)

    def _round(
        self, state: BattleState, *, regenerated: bool, prepared: asyncio.Task[bool] | None
    ) -> AsyncGenerator[BattleState, None]:
        """The round in a task of its own (see arena.rounds), its progress relayed as snapshots."""
        return self._rounds.run(
            state, lambda live: self._run_round(state, live, regenerated=regenerated, prepared=prepared)
        )

    async def _run_round(
        self, state: BattleState, live: LiveRound, *, regenerated: bool, prepared: asyncio.Task[bool] | None
    ) -> None:
        state.replies = {Side.A: Reply(), Side.B: Reply()}
        tasks = [
            asyncio.create_task(
                stream_reply(
                    self._backends[state.models[side]],
                    list(state.histories[side]),
                    state.params.get(side) or self._config.model(state.models[side]).generation,
                    state.replies[side],
                    live.changed,
                )
            )
            for side in Side
        ]
        if prepared is not None:
            prepared.add_done_callback(lambda _: live.changed.set())
        try:
            while not (state.stop_requested or all(t.done() for t in tasks) or _failed(prepared)):
                await live.changed.wait()
                live.changed.clear()
                self._check_leak(state)
                live.updated.set()
        finally:
            try:
                await end_replies(tasks)
                if prepared is not None:
                    await asyncio.wait({prepared})
            finally:
                if prepared is None or (prepared.done() and not _failed(prepared)):
                    await self._finish_round(state, regenerated=regenerated)
                else:
                    self._take_back_question(state)

    @staticmethod
    def _take_back_question(state: BattleState) -> None:
        """The battle could not be stored: forget the question and its answers, so the user can simply ask again."""
        for side in Side:
            state.histories[side].pop()
        state.replies = {}
        state.streaming = False

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
        record = functools.partial(
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
        try:
            # shielded inside: a cancelled stream (the user left) must still leave a complete round in the DB
            await retry_write(record, what="a battle round", policy=self._retry)
        except SQLAlchemyError:  # logged by retry_write; a non-transient failure is logged here
            log.error("a battle round was not stored")
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
        battle_id = state.battle_id
        record = functools.partial(
            self._repo.record_vote,
            battle_id=battle_id,
            turn_index=turn_index,
            outcome=outcome,
            anonymous=state.anonymous,
            voter=voter,
            identity_leak=state.identity_leak is not None,
            language=state.turn_language,
        )
        try:
            await retry_write(record, what="a vote", policy=self._retry)
        except DuplicateVote:
            if not await self._stored_by_an_earlier_attempt(battle_id, turn_index, outcome, voter):
                raise VoteRefused(ALREADY_VOTED) from None
        except UnknownBattle:
            state.voted_turns.discard(turn_index)
            raise VoteRefused("This battle can no longer be voted on. Please start a new round.") from None
        except SQLAlchemyError:
            # retried and still failing: free the round so the same vote can be cast again, and say so
            state.voted_turns.discard(turn_index)
            log.error("a vote was not stored; the voter was told to vote again")
            raise VoteRefused(VOTE_NOT_SAVED) from None
        state.revealed = True
        return self.contestants(state)

    async def _stored_by_an_earlier_attempt(
        self, battle_id: str, turn_index: int, outcome: Outcome, voter: Voter
    ) -> bool:
        """Whether a "duplicate" is this very vote, committed by an attempt whose success report was lost."""
        try:
            stored = await asyncio.to_thread(self._repo.round_vote, battle_id, turn_index)
        except SQLAlchemyError:
            return False
        return stored is not None and stored.session_id == voter.session_id and stored.outcome is outcome


def _failed(prepared: asyncio.Task[bool] | None) -> bool:
    """Whether the battle row could not be stored (the round then ends at once)."""
    if prepared is None or not prepared.done():
        return False
    return prepared.cancelled() or prepared.exception() is not None or not prepared.result()


def leak_notice(state: BattleState) -> str:
    """The sentence shown when an answer revealed a model's identity."""
    if state.identity_leak is None:
        return ""
    return (
        "Note: an answer names a model, so your vote on this battle will be kept "
        "but will not count towards the leaderboard."
    )
