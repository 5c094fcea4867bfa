"""What the Chat tab shows: a presenter over the chat service, one method per event, returning plain views.

`arena.ui.chat` lays out the tab and turns each view into component updates; this module never touches Gradio
components, so it is tested without a browser.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass

from arena.chat import ChatService
from arena.domain import ChatState, ReplyStatus, Voter
from arena.errors import UserError
from arena.ui.common import KEEP, Keep, pane, shown, wait_stored

# plain words, not thumbs: a browser without an emoji font shows emoji as empty boxes
GOOD, BAD = "Good answer", "Bad answer"
RATINGS = {GOOD: True, BAD: False}
WAIT_FOR_ANSWER = "Please wait until the answer is finished."
NOT_RATEABLE = "That answer cannot be rated: it is still streaming, or it ended with an error."
STOP_WAIT_SECONDS = 30.0  # at most this long the render after Stop waits for the stopped answer to be stored

Pane = list[dict[str, str]]
Turn = Callable[[ChatState, Voter], AsyncGenerator[ChatState, None]]


@dataclass
class Slot:
    """Per-session holder of the live conversation, mutated in place (see arena.ui.battle_presenter.Slot)."""

    chat: ChatState | None = None


@dataclass(frozen=True)
class ChatView:
    """The pane, the input box and the notice under them; KEEP leaves the box as it is."""

    messages: Pane
    box: str | Keep
    notice: str
    warning: str | None = None  # also shown as a toast


@dataclass(frozen=True)
class Cleared:
    """After Clear (or a model change): either everything emptied, or the conversation kept because it streams."""

    view: ChatView
    emptied: bool  # False: the rating form stays as it is


@dataclass(frozen=True)
class Feedback:
    """After *Save feedback*: the status line and the answer number the rating went to."""

    status: str
    answer: str | Keep
    warning: str | None = None


@dataclass(frozen=True)
class Liked:
    """After a thumb under an answer: the rating form filled in for that answer (and opened)."""

    rating: str | Keep
    answer: str
    tags: object  # the reasons to show: KEEP, or a list of tags
    comment: object  # the comment to show: KEEP, or a string
    status: str
    warning: str | None = None


def chat_messages(st: ChatState | None) -> Pane:
    """The Chatbot messages of a conversation, a failed question shown with its error sentence."""
    if st is None:
        return []
    if st.reply is not None and st.reply.status is ReplyStatus.ERROR and not st.streaming:
        # the failed question was taken out of the history; show it with the error sentence
        return [
            *pane(st.history, None, False),
            {"role": "user", "content": st.last_question},
            {"role": "assistant", "content": shown(st.reply)},
        ]
    return pane(st.history, st.reply, st.streaming)


class ChatPresenter:
    """The behaviour of the Chat tab, as views over the chat service."""

    def __init__(self, service: ChatService, *, stop_wait_seconds: float = STOP_WAIT_SECONDS) -> None:
        self._service = service
        self._names = service.model_names()
        self._stop_wait = stop_wait_seconds

    @property
    def names(self) -> list[str]:
        """The models a user can chat with, in config order."""
        return list(self._names)

    @property
    def tags(self) -> list[str]:
        """The reasons a rating may carry."""
        return self._service.feedback_tags

    def choices(self) -> list[tuple[str, str]]:
        """The model picker's (label, value) pairs; a model that cannot answer now says so."""
        return [(n if self._service.is_available(n) else f"{n} (unavailable)", n) for n in self._names]

    async def send(self, slot: Slot, model: object, text: object, voter: Voter) -> AsyncGenerator[ChatView, None]:
        """Ask `model` (a new conversation if the picker changed) and yield the views as the answer streams."""
        async for view in self._stream(slot, lambda st, v: self._service.ask(st, text, v), model, voter):
            yield view

    async def regenerate(self, slot: Slot, model: object, voter: Voter) -> AsyncGenerator[ChatView, None]:
        """A new answer to the last question, streamed."""
        async for view in self._stream(slot, self._service.regenerate, model, voter):
            yield view

    async def _stream(self, slot: Slot, make: Turn, model: object, voter: Voter) -> AsyncGenerator[ChatView, None]:
        st = slot.chat
        try:
            if st is None or st.switches_to(model):
                if st is not None and st.streaming:
                    raise UserError(WAIT_FOR_ANSWER)
                st = slot.chat = self._service.new_chat(model, voter)
            async with contextlib.aclosing(make(st, voter)) as updates:
                async for current in updates:
                    yield ChatView(chat_messages(current), "", "")
        except UserError as exc:
            yield ChatView(chat_messages(st), KEEP, str(exc), str(exc))

    def stop(self, slot: Slot) -> None:
        """Ask the streaming answer to stop."""
        self._service.stop(slot.chat)

    async def after_stop(self, slot: Slot) -> ChatView:
        """The stopped answer once it is stored: the cancelled stream never sends its last frame."""
        await wait_stored(self._service.wait_until_stored(slot.chat), self._stop_wait)
        return ChatView(chat_messages(slot.chat), KEEP, "")

    def clear(self, slot: Slot) -> Cleared:
        """Forget the conversation (not while an answer streams)."""
        if slot.chat is not None and slot.chat.streaming:
            return Cleared(ChatView(chat_messages(slot.chat), KEEP, WAIT_FOR_ANSWER), emptied=False)
        slot.chat = None
        return Cleared(ChatView([], "", ""), emptied=True)

    async def feedback(
        self, slot: Slot, choice: object, number: object, reasons: object, note: object, voter: Voter
    ) -> Feedback:
        """Store the form's rating, reasons and comment on the numbered answer (empty: the last)."""
        st = slot.chat
        try:
            turn = self._service.answer_turn(st, number)
            liked = RATINGS.get(choice) if isinstance(choice, str) else None
            await self._service.feedback(st, turn, liked, reasons, note, voter)
        except UserError as exc:
            return Feedback(str(exc), KEEP, str(exc))
        shown_number = st.answer_number(turn) if st is not None else 0
        return Feedback(f"Thanks for your feedback: answer {shown_number} is rated *{choice}*.", str(shown_number))

    async def like(
        self, slot: Slot, index: int, liked: object, before: object, reasons: object, note: object, voter: Voter
    ) -> Liked:
        """A thumb under the message at `index` stores its rating at once; the form then offers reasons."""
        st = slot.chat
        number = sum(1 for m in chat_messages(st)[: index + 1] if m["role"] == "assistant")
        if not isinstance(liked, bool):  # the thumb was clicked off: a stored rating stays until changed
            kept = f"Answer {number} keeps any rating already saved; click a thumb to change it."
            return Liked(KEEP, str(number), KEEP, KEEP, kept)
        if st is not None and not st.rateable(number):
            return Liked(KEEP, str(number), KEEP, KEEP, NOT_RATEABLE)
        try:
            turn = self._service.answer_turn(st, number)
            await self._service.rate(st, turn, liked, voter)
        except UserError as exc:
            return Liked(KEEP, str(number), KEEP, KEEP, str(exc), str(exc))
        same = str(before).strip() == str(number)  # the same answer again: keep the reasons and comment typed for it
        label = GOOD if liked else BAD
        saved = f"Saved: answer {number} is rated *{label}*. Reasons and a comment are optional: add them here."
        return Liked(label, str(number), reasons if same else [], note if same else "", saved)
