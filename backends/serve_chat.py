"""The OpenAI chat route of `backends.serve`: /v1/chat/completions, rendered with the server's prompt format."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

import prompts
from backends.base import GenerationFailed, Message
from backends.local import LocalBackend
from backends.serve_tgi import VERSION, error_response, read_json, sse_response
from backends.served import Finish, ServedModel, fit_to_context, record_success, run_tokens
from backends.streaming import StopMatcher
from backends.tgi_protocol import (
    GenerateRequest,
    InvalidRequest,
    ProtocolError,
    TemplateMissing,
    chat_finish_reason,
    parse_generate,
    sse,
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


@dataclass(frozen=True)
class ChatCall:
    """A validated chat completion request: which model answers, the /generate request it becomes, how to reply."""

    backend: LocalBackend
    req: GenerateRequest
    stream: bool
    name: str  # the model name replies carry
    include_usage: bool = False  # stream_options.include_usage: a last chunk with the token counts


def parse_chat(served: ServedModel, body: Any) -> ChatCall:
    """Validate a chat completion body into the same request a /generate call would make.

    As TGI's chat route: `temperature: 0` means greedy decoding (OpenAI clients send it for deterministic
    answers); `n`, `logprobs` and `top_logprobs` are accepted and unused; `stop` may be a string or a list.
    """
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    model = body.get("model") or ""
    if not isinstance(model, str):
        raise InvalidRequest("`model` must be a string")
    # TGI treats any chat model name that is not a loaded adapter as the base model
    backend = served.adapters.get(model, served.base)
    prompt = chat_prompt(served, backend, body.get("messages"))
    stop = body.get("stop")
    temperature = body.get("temperature")
    greedy = isinstance(temperature, (int, float)) and not isinstance(temperature, bool) and temperature == 0
    parameters = {
        "max_new_tokens": body.get("max_tokens", body.get("max_completion_tokens")),
        "temperature": None if greedy else temperature,
        "do_sample": False if greedy else None,
        "top_p": body.get("top_p"),
        "top_k": body.get("top_k"),
        "repetition_penalty": body.get("repetition_penalty"),
        "seed": body.get("seed"),
        "stop": [stop] if isinstance(stop, str) else stop,
    }
    req = parse_generate({"inputs": prompt, "parameters": parameters}, served.limits, full_text_default=False)
    name = model if model in served.adapters else served.model_id
    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    return ChatCall(backend, req, bool(body.get("stream", False)), name, include_usage)


async def chat_events(
    served: ServedModel, backend: LocalBackend, req: GenerateRequest, finish: Finish
) -> AsyncGenerator[str, None]:
    """Text pieces of a chat answer (stop strings cut, as OpenAI does)."""
    ids = backend.encode(req.inputs, add_special_tokens=served.template != prompts.TOKENIZER)
    params = fit_to_context(served, req, len(ids))
    finish.input_tokens = len(ids)
    stops = [*prompts.stop_strings(served.template), *req.stop]
    matcher = StopMatcher(stops)
    async for token in run_tokens(backend, ids, params, stops, finish):
        if token.special:
            continue
        piece = matcher.feed(token.text)
        if piece:
            yield piece
        if matcher.stopped:
            finish.reason = "stop_sequence"
            return
    tail = matcher.flush()
    if tail:
        yield tail


async def chat(served: ServedModel, request: Request) -> Response:
    """POST /v1/chat/completions, streamed or not."""
    started = time.perf_counter()
    try:
        call = parse_chat(served, await read_json(request))
    except ProtocolError as exc:
        return error_response(exc, served)
    completion = _Completion(f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time()), call.name)
    if call.stream:
        return sse_response(_chat_stream(served, call, completion, started))
    try:
        with served.slot():
            finish = Finish()
            pieces = [p async for p in chat_events(served, call.backend, call.req, finish)]
    except (ProtocolError, GenerationFailed) as exc:
        return error_response(exc, served)
    record_success(served, finish.input_tokens, finish.generated, started)
    choice = {
        "index": 0,
        "message": {"role": "assistant", "content": "".join(pieces)},
        "logprobs": None,
        "finish_reason": chat_finish_reason(finish.reason),
    }
    return JSONResponse(completion.body("chat.completion", choices=[choice], usage=_usage(finish)))


def _usage(finish: Finish) -> dict[str, int]:
    """OpenAI's token counts of one answer."""
    return {
        "prompt_tokens": finish.input_tokens,
        "completion_tokens": finish.generated,
        "total_tokens": finish.input_tokens + finish.generated,
    }


@dataclass(frozen=True)
class _Completion:
    """What every chunk (or the whole answer) of one chat completion repeats."""

    id: str
    created: int
    model: str

    def body(self, kind: str, **rest: Any) -> dict[str, Any]:
        return {
            "object": kind,
            "id": self.id,
            "created": self.created,
            "model": self.model,
            "system_fingerprint": VERSION,
            **rest,
        }


async def _chat_stream(
    served: ServedModel, call: ChatCall, completion: _Completion, started: float
) -> AsyncGenerator[bytes, None]:
    def chunk(delta: dict[str, str], finish_reason: str | None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return sse(completion.body("chat.completion.chunk", choices=[choice], usage=None))

    try:
        with served.slot():
            finish = Finish()
            async for piece in chat_events(served, call.backend, call.req, finish):
                yield chunk({"role": "assistant", "content": piece}, None)
            yield chunk({"role": "assistant", "content": ""}, chat_finish_reason(finish.reason))
        if call.include_usage:  # OpenAI's stream_options: one more chunk, no choices, the whole request's usage
            yield sse(completion.body("chat.completion.chunk", choices=[], usage=_usage(finish)))
        record_success(served, finish.input_tokens, finish.generated, started)
    except ProtocolError as exc:
        served.metrics.failures[exc.error_type] += 1
        yield sse({"error": {"message": str(exc), "http_status_code": exc.status}, "error_type": exc.error_type})
    except GenerationFailed as exc:
        served.metrics.failures["generation"] += 1
        yield sse({"error": {"message": f"Request failed during generation: {exc}", "http_status_code": 424}})
    yield sse("[DONE]")
