"""TGI's own routes of `backends.serve`: /generate, /generate_stream and / (streamed or not), /info, /v1/models."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from backends.base import GenerationFailed
from backends.served import Finish, ServedModel, Token, generated_tokens, record_success
from backends.tgi_protocol import (
    KEEP_ALIVE,
    GenerationCrashed,
    InvalidRequest,
    ProtocolError,
    details_json,
    parse_generate,
    sse,
    token_json,
)

VERSION = "3.3.6-corral"
KEEP_ALIVE_SECONDS = 15.0


def error_response(exc: ProtocolError | GenerationFailed, served: ServedModel) -> JSONResponse:
    """TGI's JSON error answer (a generation failure is its 424), counted in /metrics."""
    if isinstance(exc, GenerationFailed):
        exc = GenerationCrashed(f"Request failed during generation: {exc}")
    served.metrics.failures[exc.error_type] += 1
    return JSONResponse(exc.body(), status_code=exc.status)


async def read_json(request: Request) -> Any:
    """The request's JSON body, or TGI's validation error."""
    try:
        return await request.json()
    except ValueError:
        raise InvalidRequest("the body is not valid JSON") from None


async def generate(served: ServedModel, body: Any, *, full_text_default: bool, as_list: bool = False) -> Response:
    """Non-streaming generation (POST /generate; POST / without `stream` answers a one-item list)."""
    started = time.perf_counter()
    finish = Finish()
    try:
        req = parse_generate(body, served.limits, full_text_default=full_text_default)
        tokens = [t async for t in generated_tokens(served, req, finish)]
    except (ProtocolError, GenerationFailed) as exc:
        return error_response(exc, served)
    record_success(served, finish.input_tokens, finish.generated, started)
    text = (req.inputs if req.return_full_text else "") + finish.text
    reply: dict[str, Any] = {"generated_text": text}
    if req.details:
        token_list = [token_json(t.id, t.text, t.logprob, t.special) for t in tokens]
        reply["details"] = details_json(finish.reason, finish.generated, finish.seed, finish.input_tokens, token_list)
    return JSONResponse([reply] if as_list else reply)


async def with_keep_alive(events: AsyncIterator[bytes]) -> AsyncGenerator[bytes, None]:
    """Forward events, sending a `:` comment whenever none came for 15 s (proxies drop silent streams)."""
    iterator = aiter(events)
    pending: asyncio.Future[bytes] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(iterator))
            done, _ = await asyncio.wait({pending}, timeout=KEEP_ALIVE_SECONDS)
            if not done:
                yield KEEP_ALIVE
                continue
            try:
                item = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            yield item
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):  # let the cancelled step finish before closing the generator
                await pending
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()


async def generate_stream_events(served: ServedModel, body: Any, *, full_text_default: bool) -> AsyncIterator[bytes]:
    """The SSE events of a streamed generation; errors arrive as an event after a 200, as in TGI."""
    started = time.perf_counter()
    finish = Finish()
    try:
        req = parse_generate(body, served.limits, full_text_default=full_text_default)
        index = 0
        last: Token | None = None
        async for token in generated_tokens(served, req, finish):
            if last is not None:
                index += 1
                yield sse(_stream_event(index, last, None, None))
            last = token
        if last is not None:  # the final event carries the whole text and the details
            text = (req.inputs if req.return_full_text else "") + finish.text
            details = details_json(finish.reason, finish.generated, finish.seed, finish.input_tokens, None)
            yield sse(_stream_event(index + 1, last, text, details if req.details else None))
        record_success(served, finish.input_tokens, finish.generated, started)
    except ProtocolError as exc:
        served.metrics.failures[exc.error_type] += 1
        yield sse(exc.body())
    except GenerationFailed as exc:
        served.metrics.failures["generation"] += 1
        yield sse({"error": f"Request failed during generation: {exc}", "error_type": "generation"})


def _stream_event(index: int, token: Token, text: str | None, details: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "index": index,
        "token": token_json(token.id, token.text, token.logprob, token.special),
        "generated_text": text,
        "details": details,  # no `top_tokens`: TGI leaves the array out when it is empty
    }


def sse_response(events: AsyncIterator[bytes]) -> StreamingResponse:
    """A server-sent event stream with keep-alive comments."""
    return StreamingResponse(
        with_keep_alive(events), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


def info_json(served: ServedModel) -> dict[str, Any]:
    """GET /info, with the fields TGI reports."""
    return {
        "model_id": served.model_id,
        "model_sha": None,
        "model_pipeline_tag": "text-generation",
        "max_concurrent_requests": served.max_concurrent,
        "max_best_of": 1,
        "max_stop_sequences": served.limits.max_stop_sequences,
        "max_input_tokens": served.limits.max_input_tokens,
        "max_total_tokens": served.limits.max_total_tokens,
        "validation_workers": 1,
        "max_client_batch_size": 1,
        "router": "corral-backends-serve",
        "version": VERSION,
        "sha": None,
        "docker_label": None,
    }


def models_json(served: ServedModel) -> dict[str, Any]:
    """GET /v1/models: the base model and every adapter."""
    now = int(time.time())
    ids = [served.model_id, *sorted(served.adapters)]
    return {"object": "list", "data": [{"id": i, "object": "model", "created": now, "owned_by": "corral"} for i in ids]}
