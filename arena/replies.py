"""Streaming one model's reply into a Reply, turning backend failures into a sentence in that pane."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from arena.domain import Reply, ReplyStatus
from arena.text import clean_text
from backends.base import Backend, BackendError, GenerationParams, Message

log = logging.getLogger(__name__)
UNEXPECTED = "Something went wrong while this model was answering. Please start a new round."


async def stream_reply(
    backend: Backend,
    messages: Sequence[Message],
    params: GenerationParams,
    reply: Reply,
    changed: asyncio.Event,
    *,
    clock: Callable[[], float] = time.perf_counter,
) -> None:
    """Fill `reply` as chunks arrive, setting `changed` after each; never raises a backend failure."""
    start = clock()
    try:
        async for chunk in backend.stream(messages, params):
            if reply.ttft_ms is None:
                reply.ttft_ms = (clock() - start) * 1000
            reply.text += clean_text(chunk.text)
            reply.tokens += chunk.tokens
            changed.set()
        reply.status = ReplyStatus.OK
    except BackendError as exc:
        log.warning("backend failed: %s: %s", type(exc).__name__, exc)
        reply.status, reply.error = ReplyStatus.ERROR, exc.user_message
    except Exception:
        log.exception("unexpected failure while streaming")
        reply.status, reply.error = ReplyStatus.ERROR, UNEXPECTED
    finally:
        reply.total_ms = (clock() - start) * 1000
        changed.set()


async def end_replies(tasks: Sequence[asyncio.Task[None]], *, grace: float = 5.0) -> None:
    """Cancel the replies still streaming and wait (a bounded time) until they have let go of their text."""
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=grace)
