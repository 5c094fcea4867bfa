"""`python -m backends.serve`: a CPU server speaking TGI's protocol, on transformers + peft, for dev and tests.

Routes: POST /, /generate, /generate_stream, /v1/chat/completions; GET /info, /health, /metrics, /v1/models.
Several LoRA adapters share one base model; a request picks one with `parameters.adapter_id` (chat: `model`).
Unlike TGI, an unknown `adapter_id` is a 422 instead of a silent fall-back to the base model.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

import prompts
from backends.base import GenerationFailed, GenerationParams, Message
from backends.local import LocalBackend, LocalModelPool, LocalSpec
from backends.streaming import IncrementalDecoder, StopMatcher
from backends.tgi_protocol import (
    KEEP_ALIVE,
    GenerateRequest,
    GenerationCrashed,
    InvalidRequest,
    Limits,
    Overloaded,
    ProtocolError,
    TemplateMissing,
    chat_finish_reason,
    check_lengths,
    details_json,
    parse_generate,
    sse,
    token_json,
)

log = logging.getLogger("backends.serve")
VERSION = "3.3.6-corral"
KEEP_ALIVE_SECONDS = 15.0


@dataclass(frozen=True)
class Token:
    """One generated token as the protocol reports it."""

    id: int
    text: str
    logprob: float
    special: bool


@dataclass
class Finish:
    """How a generation ended."""

    reason: str = "length"
    generated: int = 0
    text: str = ""


@dataclass
class Metrics:
    """Counters behind /metrics, named as TGI names them."""

    requests: int = 0
    success: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    generated_tokens: int = 0
    input_tokens: int = 0
    duration: float = 0.0

    def render(self, inflight: int) -> str:
        """Prometheus text exposition."""
        lines = [
            "# TYPE tgi_request_count counter",
            f"tgi_request_count {self.requests}",
            "# TYPE tgi_request_success counter",
            f"tgi_request_success {self.success}",
            "# TYPE tgi_request_failure counter",
            *(f'tgi_request_failure{{err="{k}"}} {v}' for k, v in sorted(self.failures.items())),
            "# TYPE tgi_queue_size gauge",
            "tgi_queue_size 0",
            "# TYPE tgi_batch_current_size gauge",
            f"tgi_batch_current_size {inflight}",
            "# TYPE tgi_request_generated_tokens summary",
            f"tgi_request_generated_tokens_sum {self.generated_tokens}",
            f"tgi_request_generated_tokens_count {self.success}",
            "# TYPE tgi_request_input_length summary",
            f"tgi_request_input_length_sum {self.input_tokens}",
            f"tgi_request_input_length_count {self.success}",
            "# TYPE tgi_request_duration summary",
            f"tgi_request_duration_sum {self.duration:.6f}",
            f"tgi_request_duration_count {self.success}",
        ]
        return "\n".join(lines) + "\n"


@dataclass
class ServedModel:
    """What one server process hosts: a base model, its adapters, limits and live counters."""

    model_id: str
    base: LocalBackend
    adapters: dict[str, LocalBackend]
    template: str
    limits: Limits
    max_concurrent: int
    inflight: int = 0
    metrics: Metrics = field(default_factory=Metrics)

    def backend(self, adapter_id: str | None) -> LocalBackend:
        """The base model, or the named adapter (unknown names are a 422 here, on purpose)."""
        if adapter_id is None or adapter_id == self.model_id:
            return self.base
        if adapter_id not in self.adapters:
            loaded = ", ".join(sorted(self.adapters)) or "none"
            raise InvalidRequest(f"adapter `{adapter_id}` is not loaded (loaded adapters: {loaded})")
        return self.adapters[adapter_id]

    @contextlib.contextmanager
    def slot(self) -> Any:
        """Hold one of `max_concurrent` request slots; refuse at once when none is free (TGI does not queue)."""
        if self.inflight >= self.max_concurrent:
            raise Overloaded()
        self.inflight += 1
        try:
            yield
        finally:
            self.inflight -= 1


async def run_tokens(
    backend: LocalBackend, ids: list[int], params: GenerationParams, stops: Sequence[str], finish: Finish
) -> AsyncGenerator[Token, None]:
    """Generate token by token; stop strings end generation where a token ends and stay in the text."""
    tok = backend.tokenizer
    text = IncrementalDecoder(tok)
    events = backend.generate(ids, params)
    try:
        async for ev in events:
            if ev.token_id is None:
                finish.reason = ev.finish_reason or "length"
                return
            finish.generated += 1
            if ev.finish_reason == "eos_token":
                finish.reason = "eos_token"
                yield Token(ev.token_id, str(tok.decode([ev.token_id])), ev.logprob, True)
                return
            piece = text.add(ev.token_id)
            finish.text += piece
            yield Token(ev.token_id, piece, ev.logprob, False)
            if any(finish.text.endswith(s) for s in stops if s):
                finish.reason = "stop_sequence"
                return
            if ev.finish_reason is not None:
                finish.reason = ev.finish_reason
                return
    finally:
        await events.aclose()


def fit_to_context(served: ServedModel, req: GenerateRequest, input_tokens: int) -> GenerationParams:
    """The request's parameters with max_new_tokens filling the room left when not given (as TGI does),
    after TGI's length checks."""
    params = req.params
    if not req.max_new_tokens_given:
        room = served.limits.max_total_tokens - input_tokens
        params = params.model_copy(update={"max_new_tokens": max(1, min(params.max_new_tokens, room))})
    check_lengths(input_tokens, params.max_new_tokens, served.limits)
    return params


def _prepare(served: ServedModel, req: GenerateRequest) -> tuple[LocalBackend, list[int], GenerationParams]:
    backend = served.backend(req.adapter_id)
    ids = backend.encode(req.inputs, add_special_tokens=True)  # raw inputs: the tokenizer adds BOS, as in TGI
    if req.truncate is not None:
        ids = ids[-req.truncate :]
    return backend, ids, fit_to_context(served, req, len(ids))


def _error(exc: ProtocolError, served: ServedModel) -> JSONResponse:
    served.metrics.failures[exc.error_type] += 1
    return JSONResponse(exc.body(), status_code=exc.status)


async def _json(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise InvalidRequest("the body is not valid JSON") from None


async def generate(served: ServedModel, body: Any, *, full_text_default: bool, as_list: bool = False) -> Response:
    """Non-streaming generation (POST /generate; POST / without `stream` answers a one-item list)."""
    started = time.perf_counter()
    try:
        req = parse_generate(body, served.limits, full_text_default=full_text_default)
        with served.slot():
            backend, ids, params = _prepare(served, req)
            finish = Finish()
            tokens = [t async for t in run_tokens(backend, ids, params, req.stop, finish)]
    except ProtocolError as exc:
        return _error(exc, served)
    except GenerationFailed as exc:
        return _error(GenerationCrashed(f"Request failed during generation: {exc}"), served)
    _record_success(served, len(ids), finish.generated, started)
    text = (req.inputs if req.return_full_text else "") + finish.text
    reply: dict[str, Any] = {"generated_text": text}
    if req.details:
        token_list = [token_json(t.id, t.text, t.logprob, t.special) for t in tokens]
        reply["details"] = details_json(finish.reason, finish.generated, params.seed, len(ids), token_list)
    return JSONResponse([reply] if as_list else reply)


def _record_success(served: ServedModel, input_tokens: int, generated: int, started: float) -> None:
    m = served.metrics
    m.success += 1
    m.input_tokens += input_tokens
    m.generated_tokens += generated
    m.duration += time.perf_counter() - started


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
    try:
        req = parse_generate(body, served.limits, full_text_default=full_text_default)
        with served.slot():
            backend, ids, params = _prepare(served, req)
            finish = Finish()
            index = 0
            last: Token | None = None
            async for token in run_tokens(backend, ids, params, req.stop, finish):
                if last is not None:
                    index += 1
                    yield sse(
                        {
                            "index": index,
                            "token": token_json(last.id, last.text, last.logprob, last.special),
                            "generated_text": None,
                            "details": None,
                            "top_tokens": None,
                        }
                    )
                last = token
            if last is not None:  # the final event carries the whole text and the details
                text = (req.inputs if req.return_full_text else "") + finish.text
                details = details_json(finish.reason, finish.generated, params.seed, len(ids), None)
                yield sse(
                    {
                        "index": index + 1,
                        "token": token_json(last.id, last.text, last.logprob, last.special),
                        "generated_text": text,
                        "details": details if req.details else None,
                        "top_tokens": None,
                    }
                )
        _record_success(served, len(ids), finish.generated, started)
    except ProtocolError as exc:
        served.metrics.failures[exc.error_type] += 1
        yield sse(exc.body())
    except GenerationFailed as exc:
        served.metrics.failures["generation"] += 1
        yield sse({"error": f"Request failed during generation: {exc}", "error_type": "generation"})


def _sse_response(events: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(
        with_keep_alive(events), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


def chat_prompt(served: ServedModel, backend: LocalBackend, messages: Any) -> str:
    """Render chat messages with the server's template (or the model's own); TGI's errors when impossible."""
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("`messages` must be a non-empty list")
    clean: list[Message] = []
    for m in messages:
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise InvalidRequest("each message needs a string `role` and a string `content`")
        clean.append(Message(role=m["role"], content=m["content"]))
    if served.template == prompts.TOKENIZER and not getattr(backend.tokenizer, "chat_template", None):
        raise TemplateMissing("Template error: template not found")
    try:
        return backend.render(clean) if served.template == prompts.TOKENIZER else prompts.render(served.template, clean)
    except prompts.PromptError as exc:
        raise TemplateMissing(f"Template error: {exc}") from exc


def parse_chat(served: ServedModel, body: Any) -> tuple[LocalBackend, str, GenerateRequest, bool, str]:
    """Validate a chat completion body into the same request a /generate call would make."""
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    model = body.get("model") or ""
    if not isinstance(model, str):
        raise InvalidRequest("`model` must be a string")
    # TGI treats any chat model name that is not a loaded adapter as the base model
    backend = served.adapters.get(model, served.base)
    prompt = chat_prompt(served, backend, body.get("messages"))
    stop = body.get("stop")
    parameters = {
        "max_new_tokens": body.get("max_tokens", body.get("max_completion_tokens")),
        "temperature": body.get("temperature"),
        "top_p": body.get("top_p"),
        "top_k": body.get("top_k"),
        "repetition_penalty": body.get("repetition_penalty"),
        "seed": body.get("seed"),
        "stop": [stop] if isinstance(stop, str) else stop,
    }
    req = parse_generate({"inputs": prompt, "parameters": parameters}, served.limits, full_text_default=False)
    name = model if model in served.adapters else served.model_id
    return backend, prompt, req, bool(body.get("stream", False)), name


async def chat_events(
    served: ServedModel, backend: LocalBackend, req: GenerateRequest, name: str, finish: Finish
) -> AsyncGenerator[tuple[str, Token | None], None]:
    """Text pieces of a chat answer (stop strings cut, as OpenAI does); the last item carries no token."""
    ids = backend.encode(req.inputs, add_special_tokens=served.template != prompts.TOKENIZER)
    params = fit_to_context(served, req, len(ids))
    stops = [*prompts.stop_strings(served.template), *req.stop]
    matcher = StopMatcher(stops)
    async for token in run_tokens(backend, ids, params, stops, finish):
        if token.special:
            continue
        piece = matcher.feed(token.text)
        if piece:
            yield piece, token
        if matcher.stopped:
            finish.reason = "stop_sequence"
            return
    tail = matcher.flush()
    if tail:
        yield tail, None


async def chat(served: ServedModel, request: Request) -> Response:
    """POST /v1/chat/completions, streamed or not."""
    started = time.perf_counter()
    try:
        backend, _, req, stream, name = parse_chat(served, await _json(request))
    except ProtocolError as exc:
        return _error(exc, served)
    completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    created = int(time.time())
    if stream:
        return _sse_response(_chat_stream(served, backend, req, name, completion_id, created, started))
    try:
        with served.slot():
            finish = Finish()
            pieces = [p async for p, _ in chat_events(served, backend, req, name, finish)]
    except ProtocolError as exc:
        return _error(exc, served)
    except GenerationFailed as exc:
        return _error(GenerationCrashed(f"Request failed during generation: {exc}"), served)
    prompt_tokens = len(backend.encode(req.inputs, add_special_tokens=served.template != prompts.TOKENIZER))
    _record_success(served, prompt_tokens, finish.generated, started)
    return JSONResponse(
        {
            "object": "chat.completion",
            "id": completion_id,
            "created": created,
            "model": name,
            "system_fingerprint": VERSION,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(pieces)},
                    "logprobs": None,
                    "finish_reason": chat_finish_reason(finish.reason),
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": finish.generated,
                "total_tokens": prompt_tokens + finish.generated,
            },
        }
    )


async def _chat_stream(
    served: ServedModel, backend: LocalBackend, req: GenerateRequest, name: str, cid: str, created: int, started: float
) -> AsyncGenerator[bytes, None]:
    def chunk(delta: dict[str, str], finish_reason: str | None) -> bytes:
        return sse(
            {
                "object": "chat.completion.chunk",
                "id": cid,
                "created": created,
                "model": name,
                "system_fingerprint": VERSION,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
                "usage": None,
            }
        )

    try:
        with served.slot():
            finish = Finish()
            async for piece, _ in chat_events(served, backend, req, name, finish):
                yield chunk({"role": "assistant", "content": piece}, None)
            yield chunk({"role": "assistant", "content": ""}, chat_finish_reason(finish.reason))
        _record_success(served, 0, finish.generated, started)
    except ProtocolError as exc:
        served.metrics.failures[exc.error_type] += 1
        yield sse({"error": {"message": str(exc), "http_status_code": exc.status}, "error_type": exc.error_type})
    except GenerationFailed as exc:
        served.metrics.failures["generation"] += 1
        yield sse({"error": {"message": f"Request failed during generation: {exc}", "http_status_code": 424}})
    yield sse("[DONE]")


def create_app(served: ServedModel) -> Starlette:
    """The Starlette app serving `served` with TGI's routes."""

    def with_body(
        fn: Callable[[Any], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def route(request: Request) -> Response:
            served.metrics.requests += 1
            try:
                body = await _json(request)
            except ProtocolError as exc:
                return _error(exc, served)
            return await fn(body)

        return route

    async def compat(body: Any) -> Response:
        # TGI's `/`: streams when asked; otherwise a one-item list, full text by default
        if isinstance(body, dict) and body.get("stream"):
            return _sse_response(generate_stream_events(served, body, full_text_default=True))
        return await generate(served, body, full_text_default=True, as_list=True)

    async def generate_route(body: Any) -> Response:
        return await generate(served, body, full_text_default=False)

    async def stream_route(body: Any) -> Response:
        return _sse_response(generate_stream_events(served, body, full_text_default=False))

    async def chat_route(request: Request) -> Response:
        served.metrics.requests += 1
        return await chat(served, request)

    async def info(_: Request) -> Response:
        return JSONResponse(
            {
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
        )

    async def health(_: Request) -> Response:
        return Response(status_code=200)

    async def metrics(_: Request) -> Response:
        return PlainTextResponse(served.metrics.render(served.inflight), media_type="text/plain; version=0.0.4")

    async def models(_: Request) -> Response:
        now = int(time.time())
        ids = [served.model_id, *sorted(served.adapters)]
        data = [{"id": i, "object": "model", "created": now, "owned_by": "corral"} for i in ids]
        return JSONResponse({"object": "list", "data": data})

    routes = [
        Route("/", with_body(compat), methods=["POST"]),
        Route("/generate", with_body(generate_route), methods=["POST"]),
        Route("/generate_stream", with_body(stream_route), methods=["POST"]),
        Route("/v1/chat/completions", chat_route, methods=["POST"]),
        Route("/info", info, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/v1/models", models, methods=["GET"]),
    ]
    return Starlette(routes=routes)


def load(
    model: str,
    adapters: dict[str, str],
    *,
    template: str,
    max_concurrent: int,
    max_input_tokens: int | None,
    max_total_tokens: int | None,
    dtype: str = "float32",
) -> tuple[ServedModel, LocalModelPool]:
    """Load the base model and its adapters (sharing the base weights) and fill in the limits."""
    pool = LocalModelPool(max_active_per_model=max_concurrent)
    specs = [LocalSpec("__base__", model, None, template, dtype)]
    specs += [LocalSpec(name, model, path, template, dtype) for name, path in adapters.items()]
    backends = pool.load(specs)
    base = backends.pop("__base__")
    total = max_total_tokens or base.max_total_tokens
    limits = Limits(max_input_tokens=max_input_tokens or max(1, total - 1), max_total_tokens=total)
    model_id = model if not Path(model).exists() else Path(model).resolve().name
    served = ServedModel(model_id, base, backends, template, limits, max_concurrent)
    return served, pool


def _adapter_arg(value: str) -> tuple[str, str]:
    name, sep, path = value.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got '{value}'")
    return name, path


def build_parser() -> argparse.ArgumentParser:
    """The command line of `python -m backends.serve`: every option with what it does and its default."""
    p = argparse.ArgumentParser(prog="python -m backends.serve", description=__doc__.splitlines()[0] if __doc__ else "")
    p.add_argument("--model", required=True, help="base model: a local folder or a Hugging Face hub id (required)")
    p.add_argument(
        "--adapter",
        action="append",
        type=_adapter_arg,
        default=[],
        metavar="NAME=PATH",
        help="a peft LoRA adapter on the base model that requests pick as adapter_id NAME; repeat for more "
        "(default: none, only the base model)",
    )
    p.add_argument(
        "--template",
        default=prompts.TOKENIZER,
        choices=prompts.names(),
        metavar="NAME",
        help="prompt format of /v1/chat/completions: one of %(choices)s (default: %(default)s, the model's own "
        "chat template)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.add_argument("--port", type=int, default=8080, help="port to listen on (default: %(default)s)")
    p.add_argument(
        "--max-concurrent-requests",
        type=int,
        default=128,
        metavar="N",
        help="requests served at once; one more is refused with 429, as TGI does (default: %(default)s)",
    )
    p.add_argument(
        "--max-input-tokens",
        type=int,
        metavar="N",
        help="longest prompt accepted, in tokens (default: the total limit minus one)",
    )
    p.add_argument(
        "--max-total-tokens",
        type=int,
        metavar="N",
        help="prompt plus generated tokens per request (default: the model's context length)",
    )
    p.add_argument(
        "--dtype",
        default="float32",
        choices=["float32", "bfloat16", "float16", "auto"],
        help="weight precision: one of %(choices)s (default: %(default)s)",
    )
    p.add_argument("--threads", type=int, metavar="N", help="torch CPU threads (default: torch's own choice)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, load the model and serve until interrupted."""
    args = build_parser().parse_args(argv)
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    import uvicorn

    from backends.local import ModelLoadError

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        served, pool = load(
            args.model,
            dict(args.adapter),
            template=args.template,
            max_concurrent=args.max_concurrent_requests,
            max_input_tokens=args.max_input_tokens,
            max_total_tokens=args.max_total_tokens,
            dtype=args.dtype,
        )
    except ModelLoadError as exc:
        print(f"backends.serve: {exc}", file=sys.stderr)
        return 2
    log.info(
        "serving %s with adapters %s on http://%s:%d", served.model_id, sorted(served.adapters), args.host, args.port
    )
    try:
        uvicorn.run(create_app(served), host=args.host, port=args.port, log_level="warning")
    finally:
        pool.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
