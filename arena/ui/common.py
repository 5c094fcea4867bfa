"""Helpers shared by the UI tabs: who is asking, how replies look in a chat pane, and views turned into updates."""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import gradio as gr

from arena.domain import Reply, ReplyStatus, Voter
from arena.privacy import hash_ip
from arena.text import ERROR_MARK
from backends.base import Message

VoterOf = Callable[[gr.Request], Voter]

# Gradio ships the semibold (weight 600: buttons, bold text) of its two theme fonts as subsets of a few capitals:
# every other letter fell back to a serif font, so "A is better" showed a small sans "A" before a serif "is better".
# Weight 600 comes from the complete bold files Gradio ships beside them instead.
PAGE_CSS = " ".join(
    f'@font-face {{ font-family: "{family}"; src: url("static/fonts/{folder}/{folder}-Bold.woff2") format("woff2"); '
    "font-weight: 600; font-style: normal; }"
    for family, folder in (("Source Sans Pro", "SourceSansPro"), ("IBM Plex Mono", "IBMPlexMono"))
)


def voter_factory(salt: bytes) -> VoterOf:
    """A function from a Gradio request to a Voter with a salted IP hash."""

    def voter_of(request: gr.Request) -> Voter:
        client = getattr(request, "client", None)
        ip = getattr(client, "host", None)
        return Voter(session_id=str(request.session_hash or "anonymous"), ip_hash=hash_ip(ip, salt))

    return voter_of


class Keep(enum.Enum):
    """A view field that leaves its component as it is on screen."""

    KEEP = "keep"


KEEP = Keep.KEEP


def update(value: object) -> Any:
    """What a handler returns for one view field: the value itself, or a no-op update for KEEP."""
    return gr.update() if value is KEEP else value


def warn(warning: str | None) -> None:
    """Show a presenter's warning as a Gradio toast (the sentence also stays in the tab's notice)."""
    if warning:
        gr.Warning(warning)


async def wait_stored(stored: Awaitable[None], seconds: float) -> None:
    """Wait for a stopped answer to be stored, at most `seconds`: the render after Stop shows what is there then."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stored


def shown(reply: Reply) -> str:
    """A reply as the pane shows it: its text, and the error sentence if it failed."""
    if reply.status is ReplyStatus.ERROR:
        return f"{reply.text}\n\n{ERROR_MARK} {reply.error}".strip()
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


def seal_api(blocks: gr.Blocks) -> None:
    """Leave only the public, named endpoints reachable by name, and every call going through the queue.

    Gradio 6 leaves `api_visibility="private"` events out of /gradio_api/info but still routes
    /gradio_api/call/<name> to them by their generated name (`on_send_1`, `compute` …), and with `api_open`
    /gradio_api/run/<name> skips the queue and its concurrency limits. The page itself calls events by index
    through the queue, which stays as it is: every handler checks its session's own state anyway.
    """
    blocks.api_open = False
    for fn in blocks.fns.values():
        if fn.api_visibility != "public":
            fn.api_name = None


def api_error_handlers() -> dict[type[Exception], Any]:
    """FastAPI exception handlers for `launch(app_kwargs=…)`: an unknown endpoint name is a 404, not Gradio's 500."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from gradio.route_utils import FnIndexInferError

    async def unknown_endpoint(_request: Any, _exc: Exception) -> JSONResponse:
        return JSONResponse({"error": "There is no such endpoint."}, status_code=404)

    async def unknown_event(_request: Any, _exc: Exception) -> JSONResponse:
        # a forged fn_index on /gradio_api/queue/join is looked up with fns[fn_index]: a KeyError, not a 500
        return JSONResponse({"error": "This request names no event of this app."}, status_code=400)

    async def invalid_body(_request: Any, _exc: Exception) -> JSONResponse:
        # FastAPI's own answer echoes the body back and fails (a 500) when it holds a non-JSON float (Infinity)
        return JSONResponse({"error": "The request body is not valid for this endpoint."}, status_code=422)

    return {FnIndexInferError: unknown_endpoint, KeyError: unknown_event, RequestValidationError: invalid_body}
