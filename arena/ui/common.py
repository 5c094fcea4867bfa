"""Helpers shared by the UI tabs: who is asking, and how replies look in a chat pane."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import gradio as gr

from arena.domain import Reply, ReplyStatus, Voter
from arena.privacy import hash_ip
from backends.base import Message

VoterOf = Callable[[gr.Request], Voter]


def voter_factory(salt: bytes) -> VoterOf:
    """A function from a Gradio request to a Voter with a salted IP hash."""

    def voter_of(request: gr.Request) -> Voter:
        client = getattr(request, "client", None)
        ip = getattr(client, "host", None)
        return Voter(session_id=str(request.session_hash or "anonymous"), ip_hash=hash_ip(ip, salt))

    return voter_of


def shown(reply: Reply) -> str:
    """A reply as the pane shows it: its text, and the error sentence if it failed."""
    if reply.status is ReplyStatus.ERROR:
        return f"{reply.text}\n\n⚠️ {reply.error}".strip()
    if reply.status is ReplyStatus.STOPPED:
        return f"{reply.text}\n\n*(stopped)*".strip()
    return reply.text or ("…" if reply.status is ReplyStatus.STREAMING else "")


def pane(history: Sequence[Message], reply: Reply | None, streaming: bool) -> list[dict[str, str]]:
    """Chatbot messages for a history whose last assistant message may still be streaming."""
    msgs = [{"role": m["role"], "content": m["content"]} for m in history]
    if reply is None:
        return msgs
    if streaming:
        msgs.append({"role": "assistant", "content": shown(reply)})
    elif msgs and msgs[-1]["role"] == "assistant":
        msgs[-1]["content"] = shown(reply)
    return msgs
