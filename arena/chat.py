"""The chat service: one chosen model, multi-turn, regenerate, good/bad answer ratings; every finished turn stored."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable

from arena.domain import ChatState, Reply, ReplyStatus, Voter
from arena.errors import InputRejected
from arena.replies import stream_reply
from arena.rounds import LiveRound
from arena.store.errors import DuplicateFeedback, StoreUnavailable, UnknownBattle
from arena.text import clean_text, clean_user_message
from arena.turns import TurnService, TurnSteps, require_owner, run_streams, voter_keys
from backends.base import Message

MAX_COMMENT_CHARS = 2000
NOT_SAVED = "Sorry, this answer could not be saved. Please try again."
log = logging.getLogger(__name__)


class ChatService(TurnService[ChatState]):
    """Runs single-model conversations for the UI."""

    @property
    def feedback_tags(self) -> list[str]:
        """Reason tags a user may attach to a rating."""
        return list(self._config.arena.feedback_tags)

    def model_names(self) -> list[str]:
        """Models a user can chat with (available or not)."""
        return [m.name for m in self._config.models if m.name in self._backends]

    def is_available(self, name: str) -> bool:
        """Whether `name` can answer right now."""
        backend = self._backends.get(name)
        return backend is not None and backend.available

    def new_chat(self, model: object, voter: Voter) -> ChatState:
        """A fresh conversation with `model`."""
        if not isinstance(model, str) or model not in self.model_names():
            raise InputRejected("Please choose one of the listed models.")
        return ChatState(model=model, session_id=voter.session_id)

    def _check(self, state: ChatState, voter: Voter) -> None:
        require_owner(state, voter, "This conversation belongs to another session. Please clear it.")
        if state.streaming:
            raise InputRejected("Please wait until the answer is finished.")
        if not self.is_available(state.model):
            raise InputRejected(f"{state.model} is unavailable right now. Please choose another model or try later.")

    async def ask(self, state: ChatState, text: object, voter: Voter) -> AsyncGenerator[ChatState, None]:
        """Send a message and yield the state as the answer streams in."""
        if state.session_id == voter.session_id and state.turns >= self._config.arena.max_turns:
            raise InputRejected(
                f"This conversation has reached its limit of {self._config.arena.max_turns} turns. Please clear it."
            )
        message = clean_user_message(text, max_chars=self._config.arena.max_input_chars)
        self._check(state, voter)
        self._guards.limiter.check_message(voter_keys(voter))
        # claimed before the first await: a second send in this session is refused
        state.streaming, state.stop_requested = True, False
        state.history.append(Message(role="user", content=message))
        state.last_question = message
        # the answer starts at once; the language and the conversation row are worked out meanwhile
        prepared = asyncio.create_task(self._prepare(state, voter, message))
        async with contextlib.aclosing(self._turn(state, prepared=prepared, regenerated=False)) as updates:
            async for current in updates:
                yield current
        if state.conversation_id is None:  # it could not be stored: the question was taken back
            raise InputRejected(NOT_SAVED)

    async def _prepare(self, state: ChatState, voter: Voter, message: str) -> str | None:
        """Detect the question's language and store the conversation if it is new; raise if it cannot be stored."""
        language = await asyncio.to_thread(self._guards.language.detect, message)
        if state.conversation_id is None:
            conversation_id = self._new_id()
            try:
                await self._store.write(
                    "a new conversation",
                    lambda repo: repo.create_chat(conversation_id=conversation_id, model=state.model, voter=voter),
                )
            except StoreUnavailable:
                log.error("a new conversation was not stored")
                raise
            state.conversation_id = conversation_id
        return language

    async def regenerate(self, state: ChatState, voter: Voter) -> AsyncGenerator[ChatState, None]:
        """Answer the last question again; the replaced answer stays in the DB as superseded."""
        self._check(state, voter)
        if state.turns == 0 or state.reply is None:
            raise InputRejected("Ask a question first: there is nothing to regenerate yet.")
        self._guards.limiter.check_message(voter_keys(voter))
        state.streaming, state.stop_requested = True, False
        if state.reply.status is not ReplyStatus.ERROR:
            state.history.pop()  # the answer being replaced
        else:
            state.history.append(Message(role="user", content=state.last_question))
        state.turns -= 1
        async with contextlib.aclosing(self._turn(state, prepared=None, regenerated=True)) as updates:
            async for current in updates:
                yield current

    def _turn(
        self, state: ChatState, *, prepared: asyncio.Task[str | None] | None, regenerated: bool
    ) -> AsyncGenerator[ChatState, None]:
        """The turn in a task of its own (see arena.rounds), its progress relayed as snapshots."""
        return self._run(state, lambda live: self._run_turn(state, live, prepared, regenerated))

    async def _run_turn(
        self, state: ChatState, live: LiveRound, prepared: asyncio.Task[str | None] | None, regenerated: bool
    ) -> None:
        reply = state.reply = Reply()
        params = self._config.model(state.model).generation
        task = asyncio.create_task(
            stream_reply(self._backends[state.model], list(state.history), params, reply, live.changed)
        )

        async def finish() -> None:
            language = None if prepared is None else prepared.result()
            await self._finish_turn(state, reply, params.model_dump(mode="json"), language, regenerated)

        def take_back() -> None:  # the conversation could not be stored: the question can simply be asked again
            state.history.pop()
            state.reply = None
            state.streaming = False

        steps = TurnSteps(
            stopped=lambda: state.stop_requested, on_change=lambda: None, finish=finish, take_back=take_back
        )
        await run_streams(live, [task], prepared, steps)

    async def _finish_turn(
        self, state: ChatState, reply: Reply, params: dict[str, object], language: str | None, regenerated: bool
    ) -> None:
        """Store the turn and move on; the session is released whatever happens to the write."""
        if reply.status is ReplyStatus.STREAMING:
            reply.status = ReplyStatus.STOPPED
        message_id: int | None = None
        conversation_id, turn_index = state.conversation_id, state.turns
        try:
            assert conversation_id is not None
            message_id = await self._store.write(
                "a chat turn",
                lambda repo: repo.record_chat_turn(
                    conversation_id=conversation_id,
                    turn_index=turn_index,
                    user_text=state.last_question,
                    reply=reply,
                    model=state.model,
                    params=params,
                    language=language,
                    regenerated=regenerated,
                ),
            )
        except StoreUnavailable:
            log.error("a chat turn was not stored")
            reply.status, reply.error = ReplyStatus.ERROR, NOT_SAVED
        finally:
            if reply.status is not ReplyStatus.ERROR and message_id is not None:
                state.history.append(Message(role="assistant", content=reply.text))
                state.message_ids[state.turns] = message_id  # only answers shown in the history can be rated
            else:  # keep the failed question out of the context, so the user can simply ask again
                state.history.pop()
                state.message_ids.pop(state.turns, None)
            state.turns += 1
            state.streaming = False

    def answer_turn(self, state: ChatState | None, number: object) -> int:
        """The stored turn of the n-th answer shown (1 = the first; empty = the last), or a sentence why not."""
        rateable = sorted(state.message_ids) if state is not None else []
        if not rateable:
            raise InputRejected(_nothing_rateable(state))
        if isinstance(number, str):  # as typed into the form
            number = number.strip()
            number = int(number) if number.isascii() and number.isdigit() else number or None
        if number is None:
            return rateable[-1]
        if isinstance(number, bool) or not isinstance(number, (int, float)) or not float(number).is_integer():
            raise InputRejected("Please give the answer's number (1 = the first answer), or leave it empty.")
        if not 1 <= number <= len(rateable):
            span = "1" if len(rateable) == 1 else f"1 to {len(rateable)}"
            raise InputRejected(f"There is no answer {int(number)} here: the answers are numbered {span}.")
        return rateable[int(number) - 1]

    async def rate(self, state: ChatState | None, turn: object, liked: object, voter: Voter) -> None:
        """Store Good answer / Bad answer on one answer at once (or change it); its reasons and comment stay."""
        await self._save_rating(state, turn, liked, None, None, voter)

    async def feedback(
        self, state: ChatState | None, turn: object, liked: object, tags: object, comment: object, voter: Voter
    ) -> None:
        """Store a rating with reason tags and a comment on one answer; a second call updates the same stored row."""
        chosen = [t for t in tags if t in self.feedback_tags] if isinstance(tags, list) else []
        note = clean_text(comment).strip()[:MAX_COMMENT_CHARS] if isinstance(comment, str) else ""
        await self._save_rating(state, turn, liked, chosen, note or None, voter)

    async def _save_rating(
        self,
        state: ChatState | None,
        turn: object,
        liked: object,
        tags: list[str] | None,
        comment: str | None,
        voter: Voter,
    ) -> None:
        """One row per answer and session: update it if this session rated the answer, else insert it."""
        require_owner(state, voter, "There is no answer to rate here yet.")
        assert state is not None
        message_id = state.message_ids.get(turn) if isinstance(turn, int) else None
        if message_id is None:
            raise InputRejected("That answer cannot be rated (it is still streaming, or was replaced).")
        if not isinstance(liked, bool):
            raise InputRejected("Please choose Good answer or Bad answer first.")
        rating, answer = ("up" if liked else "down"), message_id

        def change() -> Awaitable[bool]:
            return self._store.write(
                "chat feedback",
                lambda repo: repo.update_feedback(
                    message_id=answer, voter=voter, rating=rating, tags=tags, comment=comment
                ),
            )

        try:
            if await change():
                return
            self._guards.limiter.check_vote(voter_keys(voter))  # only a new rating counts against the limit
            try:
                await self._store.write(
                    "chat feedback",
                    lambda repo: repo.record_feedback(
                        message_id=answer, rating=rating, tags=tags or [], comment=comment, voter=voter
                    ),
                )
            except DuplicateFeedback:  # a second click of this session stored it first: this one updates it
                await change()
        except UnknownBattle:
            raise InputRejected("That answer cannot be rated.") from None
        except StoreUnavailable:
            log.error("chat feedback was not stored; the user was told to try again")
            raise InputRejected("Sorry, your feedback could not be saved right now. Please try again.") from None


def _nothing_rateable(state: ChatState | None) -> str:
    """Why no answer on screen can be rated: never "no answer" while one is shown."""
    if state is None or (not state.history and state.reply is None):
        return "There is no answer to rate here yet."
    if state.streaming:
        return "Please wait until the answer is finished, then rate it."
    return "Only a finished answer can be rated: this one ended with an error. Regenerate it, or ask again."
