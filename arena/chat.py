"""The chat service: one chosen model, multi-turn, every finished turn stored."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator, Callable, Mapping

from arena.config import AppConfig
from arena.domain import ChatState, Reply, ReplyStatus, Voter
from arena.errors import InputRejected
from arena.replies import stream_reply
from arena.store.repository import Repository
from arena.text import clean_user_message
from backends.base import Backend, Message


class ChatService:
    """Runs single-model conversations for the UI."""

    def __init__(
        self,
        *,
        config: AppConfig,
        backends: Mapping[str, Backend],
        repo: Repository,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self._config = config
        self._backends = backends
        self._repo = repo
        self._new_id = new_id

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

    async def ask(self, state: ChatState, text: object, voter: Voter) -> AsyncGenerator[ChatState, None]:
        """Send a message and yield the state as the answer streams in."""
        if state.session_id != voter.session_id:
            raise InputRejected("This conversation belongs to another session. Please clear it.")
        if state.streaming:
            raise InputRejected("Please wait until the answer is finished.")
        if state.turns >= self._config.arena.max_turns:
            raise InputRejected(
                f"This conversation has reached its limit of {self._config.arena.max_turns} turns. Please clear it."
            )
        message = clean_user_message(text, max_chars=self._config.arena.max_input_chars)
        if not self.is_available(state.model):
            raise InputRejected(f"{state.model} is unavailable right now. Please choose another model or try later.")
        if state.conversation_id is None:
            conversation_id = self._new_id()
            await asyncio.to_thread(
                self._repo.create_chat, conversation_id=conversation_id, model=state.model, voter=voter
            )
            state.conversation_id = conversation_id
        state.history.append(Message(role="user", content=message))
        state.last_question = message
        reply = state.reply = Reply()
        state.streaming = True
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
        finally:
            task.cancel()
            if reply.status is ReplyStatus.STREAMING:
                reply.status, reply.error = ReplyStatus.ERROR, "The answer was interrupted."
            await asyncio.shield(
                asyncio.to_thread(
                    self._repo.record_chat_turn,
                    conversation_id=state.conversation_id,
                    turn_index=state.turns,
                    user_text=message,
                    reply=reply,
                    model=state.model,
                    params=params.model_dump(mode="json"),
                )
            )
            if reply.status is ReplyStatus.OK:
                state.history.append(Message(role="assistant", content=reply.text))
            else:  # keep the failed question out of the context, so the user can simply ask again
                state.history.pop()
            state.turns += 1
            state.streaming = False
        yield state
