"""The chat service: one chosen model, multi-turn, regenerate, 👍/👎 feedback; every finished turn stored."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncGenerator, Callable, Mapping

from sqlalchemy.exc import SQLAlchemyError

from arena.battle import Guards, voter_keys
from arena.config import AppConfig
from arena.domain import ChatState, Reply, ReplyStatus, Voter
from arena.errors import InputRejected
from arena.replies import stream_reply
from arena.store.repository import DuplicateFeedback, Repository, UnknownBattle
from arena.text import clean_text, clean_user_message
from backends.base import Backend, Message

MAX_COMMENT_CHARS = 2000
NOT_SAVED = "Sorry, this answer could not be saved. Please try again."
log = logging.getLogger(__name__)


class ChatService:
    """Runs single-model conversations for the UI."""

    def __init__(
        self,
        *,
        config: AppConfig,
        backends: Mapping[str, Backend],
        repo: Repository,
        guards: Guards,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self._config = config
        self._backends = backends
        self._repo = repo
        self._guards = guards
        self._new_id = new_id

    @property
    def feedback_tags(self) -> list[str]:
        """Reason tags a user may attach to a 👍/👎."""
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
        if state.session_id != voter.session_id:
            raise InputRejected("This conversation belongs to another session. Please clear it.")
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
        state.streaming = True  # claimed before the first await: a second send in this session is refused
        try:
            language = await asyncio.to_thread(self._guards.language.detect, message)
            if state.conversation_id is None:
                conversation_id = self._new_id()
                await asyncio.to_thread(
                    self._repo.create_chat, conversation_id=conversation_id, model=state.model, voter=voter
                )
                state.conversation_id = conversation_id
        except SQLAlchemyError:
            state.streaming = False
            log.exception("could not store a new conversation")
            raise InputRejected(NOT_SAVED) from None
        except BaseException:
            state.streaming = False
            raise
        state.history.append(Message(role="user", content=message))
        state.last_question = message
        async for current in self._turn(state, language=language, regenerated=False):
            yield current

    async def regenerate(self, state: ChatState, voter: Voter) -> AsyncGenerator[ChatState, None]:
        """Answer the last question again; the replaced answer stays in the DB as superseded."""
        self._check(state, voter)
        if state.turns == 0 or state.reply is None:
            raise InputRejected("Ask a question first: there is nothing to regenerate yet.")
        self._guards.limiter.check_message(voter_keys(voter))
        if state.reply.status is not ReplyStatus.ERROR:
            state.history.pop()  # the answer being replaced
        else:
            state.history.append(Message(role="user", content=state.last_question))
        state.turns -= 1
        async for current in self._turn(state, language=None, regenerated=True):
            yield current

    def stop(self, state: ChatState | None) -> None:
        """Mark the running answer as stopped by the user (the UI then cancels the stream)."""
        if state is not None and state.streaming:
            state.stop_requested = True

    async def _turn(
        self, state: ChatState, *, language: str | None, regenerated: bool
    ) -> AsyncGenerator[ChatState, None]:
        reply = state.reply = Reply()
        state.streaming, state.stop_requested = True, False
        changed = asyncio.Event()
        params = self._config.model(state.model).generation
        task = asyncio.create_task(
            stream_reply(self._backends[state.model], list(state.history), params, reply, changed)
        )
        try:
            while not task.done():
                await changed.wait()
                changed.clear()
                yield state
        except (asyncio.CancelledError, GeneratorExit):
            state.stop_requested = True  # only Stop or a closed page cancels an answer: keep what was written
            raise
        finally:
            task.cancel()
            await self._finish_turn(state, reply, params.model_dump(mode="json"), language, regenerated)
        yield state

    async def _finish_turn(
        self, state: ChatState, reply: Reply, params: dict[str, object], language: str | None, regenerated: bool
    ) -> None:
        """Store the turn and move on; the session is released whatever happens to the write."""
        if reply.status is ReplyStatus.STREAMING:
            reply.status = ReplyStatus.STOPPED
        message_id: int | None = None
        try:
            assert state.conversation_id is not None
            message_id = await asyncio.shield(
                asyncio.to_thread(
                    self._repo.record_chat_turn,
                    conversation_id=state.conversation_id,
                    turn_index=state.turns,
                    user_text=state.last_question,
                    reply=reply,
                    model=state.model,
                    params=params,
                    language=language,
                    regenerated=regenerated,
                )
            )
        except SQLAlchemyError:
            log.exception("could not store a chat turn")
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

    async def feedback(
        self, state: ChatState | None, turn: object, liked: object, tags: object, comment: object, voter: Voter
    ) -> None:
        """Store 👍/👎 (with reason tags and a comment) on one answer of this conversation."""
        if state is None or state.session_id != voter.session_id or not isinstance(turn, int):
            raise InputRejected("There is no answer to rate here yet.")
        message_id = state.message_ids.get(turn)
        if message_id is None:
            raise InputRejected("That answer cannot be rated (it is still streaming, or was replaced).")
        if not isinstance(liked, bool):
            raise InputRejected("Please rate the answer with 👍 or 👎.")
        chosen = [t for t in tags if t in self.feedback_tags] if isinstance(tags, list) else []
        note = clean_text(comment).strip()[:MAX_COMMENT_CHARS] if isinstance(comment, str) else ""
        self._guards.limiter.check_vote(voter_keys(voter))
        try:
            await asyncio.to_thread(
                self._repo.record_feedback,
                message_id=message_id,
                rating="up" if liked else "down",
                tags=chosen,
                comment=note or None,
                voter=voter,
            )
        except DuplicateFeedback:
            raise InputRejected("You already rated this answer.") from None
        except UnknownBattle:
            raise InputRejected("That answer cannot be rated.") from None
        except SQLAlchemyError:
            log.exception("could not store chat feedback")
            raise InputRejected("Sorry, your feedback could not be saved right now. Please try again.") from None
