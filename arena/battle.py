"""The battle service: pair two models, stream both answers at once, store each round, take one vote per round."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncGenerator, Callable, Mapping

from arena.background_judging import BackgroundJudging
from arena.config import AppConfig
from arena.domain import BattleState, Contestant, Outcome, Reply, ReplyStatus, Side, Voter
from arena.errors import InputRejected, VoteRefused
from arena.leaks import LeakScan
from arena.matchmaking import Matchmaker, Matchup
from arena.replies import stream_reply
from arena.rounds import LiveRound
from arena.sampling import require_two
from arena.store.errors import DuplicateVote, StoreUnavailable, UnknownBattle
from arena.store.facade import AsyncStore
from arena.text import clean_user_message
from arena.turns import Guards, TurnService, TurnSteps, require_owner, run_streams, voter_keys
from backends.base import Backend, Message

log = logging.getLogger(__name__)
NOT_SAVED = "Sorry, this round could not be saved. Please start a new round."
NOT_STARTED = "Sorry, the arena could not start this battle right now. Please try again in a moment."
VOTE_NOT_SAVED = (
    "Sorry, your vote could not be saved right now: the arena's database is not accepting writes. "
    "Nothing was recorded; please vote again in a minute."
)
ALREADY_VOTED = "You already voted on this round. Ask a follow-up or start a new round."
NOT_YOURS = "This battle belongs to another session. Please start a new round."


class BattleService(TurnService[BattleState]):
    """Runs battles for the UI; every rule about when a message or a vote is allowed lives here."""

    def __init__(
        self,
        *,
        config: AppConfig,
        backends: Mapping[str, Backend],
        store: AsyncStore,
        matchmaker: Matchmaker,
        guards: Guards,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
        judging: BackgroundJudging | None = None,
    ) -> None:
        super().__init__(config=config, backends=backends, store=store, guards=guards, new_id=new_id)
        self._matchmaker = matchmaker
        self._judging = judging

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

    async def _prepare(self, state: BattleState, voter: Voter, message: str) -> None:
        """Detect the question's language and store the battle if it is new; raises if it could not be stored."""
        language = await asyncio.to_thread(self._guards.language.detect, message)
        state.turn_language = language
        if state.battle_id is not None:
            return
        battle_id = self._new_id()
        try:
            await self._store.write(
                "a new battle",
                lambda repo: repo.create_battle(
                    battle_id=battle_id, models=state.models, voter=voter, mode=state.mode, language=language
                ),
            )
        except StoreUnavailable:
            log.error("a new battle was not stored")
            raise
        state.battle_id, state.language = battle_id, language

    async def regenerate(self, state: BattleState, voter: Voter) -> AsyncGenerator[BattleState, None]:
        """Answer the last question again on both sides; the replaced answers stay in the DB as superseded."""
        require_owner(state, voter, NOT_YOURS)
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

    def _round(
        self, state: BattleState, *, regenerated: bool, prepared: asyncio.Task[None] | None
    ) -> AsyncGenerator[BattleState, None]:
        """The round in a task of its own (see arena.rounds), its progress relayed as snapshots."""
        return self._run(state, lambda live: self._run_round(state, live, regenerated=regenerated, prepared=prepared))

    async def _run_round(
        self, state: BattleState, live: LiveRound, *, regenerated: bool, prepared: asyncio.Task[None] | None
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
        scans = {side: self._guards.leaks.scan() for side in Side}  # only new text is read as the answers grow
        steps = TurnSteps(
            stopped=lambda: state.stop_requested,
            on_change=lambda: self._check_new_text(state, scans),
            finish=lambda: self._finish_round(state, regenerated=regenerated),
            take_back=lambda: self._take_back_question(state),
        )
        await run_streams(live, tasks, prepared, steps)

    @staticmethod
    def _take_back_question(state: BattleState) -> None:
        """The battle could not be stored: forget the question and its answers, so the user can simply ask again."""
        for side in Side:
            state.histories[side].pop()
        state.replies = {}
        state.streaming = False

    @staticmethod
    def _check_new_text(state: BattleState, scans: dict[Side, LeakScan]) -> None:
        for side, scan in scans.items():
            if state.identity_leak is None:
                state.identity_leak = scan.find(state.replies[side].text)

    def _check_leak(self, state: BattleState) -> None:
        if state.identity_leak is None:
            state.identity_leak = self._guards.leaks.find_in(r.text for r in state.replies.values())

    def _check_can_ask(self, state: BattleState, voter: Voter) -> None:
        require_owner(state, voter, NOT_YOURS)
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
        battle_id, turn_index, replies = state.battle_id, state.turns, dict(state.replies)
        try:
            # shielded inside: a cancelled stream (the user left) must still leave a complete round in the DB
            await self._store.write(
                "a battle round",
                lambda repo: repo.record_battle_turn(
                    battle_id=battle_id,
                    turn_index=turn_index,
                    user_text=state.last_question,
                    replies=replies,
                    params={s: p.model_dump(mode="json") for s, p in params.items()},
                    language=state.turn_language,
                    identity_leak=state.identity_leak is not None,
                    regenerated=regenerated,
                ),
            )
        except (StoreUnavailable, UnknownBattle):
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
        require_owner(state, voter, "This battle belongs to another session, so you cannot vote on it.", VoteRefused)
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
        # read now, not in the worker thread: a retried write must not pick up a later question's language
        battle_id, anonymous, leak = state.battle_id, state.anonymous, state.identity_leak is not None
        language = state.turn_language
        try:
            await self._store.write(
                "a vote",
                lambda repo: repo.record_vote(
                    battle_id=battle_id,
                    turn_index=turn_index,
                    outcome=outcome,
                    anonymous=anonymous,
                    voter=voter,
                    identity_leak=leak,
                    language=language,
                ),
            )
        except DuplicateVote:
            if not await self._stored_by_an_earlier_attempt(battle_id, turn_index, outcome, voter):
                raise VoteRefused(ALREADY_VOTED) from None
        except UnknownBattle:
            state.voted_turns.discard(turn_index)
            raise VoteRefused("This battle can no longer be voted on. Please start a new round.") from None
        except StoreUnavailable:
            # retried and still failing: free the round so the same vote can be cast again, and say so
            state.voted_turns.discard(turn_index)
            log.error("a vote was not stored; the voter was told to vote again")
            raise VoteRefused(VOTE_NOT_SAVED) from None
        state.revealed = True
        # a judge reads one question and two answers: the first round only (a later one needs the conversation),
        # and never an answer that names a model
        if self._judging and not leak and turn_index == 0:
            answers = {side: _last_answer(state.histories[side]) for side in Side}
            models = set(state.models.values())
            self._judging.submit(battle_id, turn_index, state.last_question, answers, models)
        return self.contestants(state)

    async def _stored_by_an_earlier_attempt(
        self, battle_id: str, turn_index: int, outcome: Outcome, voter: Voter
    ) -> bool:
        """Whether a "duplicate" is this very vote, committed by an attempt whose success report was lost."""
        try:
            stored = await self._store.read("a vote", lambda repo: repo.round_vote(battle_id, turn_index))
        except StoreUnavailable:
            return False
        return stored is not None and stored.session_id == voter.session_id and stored.outcome is outcome


def leak_notice(state: BattleState) -> str:
    """The sentence shown when an answer revealed a model's identity."""
    if state.identity_leak is None:
        return ""
    return (
        "Note: an answer names a model, so your vote on this battle will be kept "
        "but will not count towards the leaderboard."
    )


def _last_answer(history: list[Message]) -> str:
    """The last assistant message of a side's conversation (what was voted on)."""
    return next((m["content"] for m in reversed(history) if m["role"] == "assistant"), "")
