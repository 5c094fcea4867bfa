"""The default `InferenceClient`: streams read straight from the server, everything else through huggingface_hub.

Streamed answers are the hot path: each token is one server-sent event, parsed here with orjson into plain dicts
(huggingface_hub builds a pydantic object per token, a sixth of the app's time at 100 battles). The requests are
the ones huggingface_hub sends (TGI's `/` route and the OpenAI chat route, None values left out), and the errors
map to the same BackendErrors. huggingface_hub stays for the rest: the non-streamed request behind an empty
stream, and everything outside streaming.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from typing import Any, TypeVar

import httpx2
import orjson
from huggingface_hub import AsyncInferenceClient
from huggingface_hub import errors as hf_errors

from backends.base import (
    BackendError,
    BackendOverloaded,
    BackendTimeout,
    BackendUnavailable,
    Chunk,
    GenerationFailed,
    GenerationParams,
    InputTooLong,
    Message,
)
from backends.clients import Rejected, RemoteTimeouts, TokenEvent, error_message, map_common_error
from backends.server_profiles import GENERIC, extra_body

T = TypeVar("T")


def map_error(exc: BaseException) -> BackendError:
    """The backend error (with its user sentence) for anything huggingface_hub or the server raised."""
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, hf_errors.OverloadedError):
        return BackendOverloaded(text)
    if isinstance(exc, hf_errors.ValidationError):  # a TGI stream's error event: its text is the server's message
        return _validation(str(exc), str(exc), text)
    if isinstance(exc, hf_errors.TextGenerationError):  # generation, incomplete_generation, unknown
        return GenerationFailed(text)
    if isinstance(exc, (hf_errors.InferenceTimeoutError, httpx2.TimeoutException)):
        return BackendTimeout(text)
    if isinstance(exc, httpx2.ConnectError):
        return BackendUnavailable(text)
    if isinstance(exc, hf_errors.HfHubHTTPError):
        reason, body = _server_error(exc.response)
        return _by_status(exc.response.status_code if exc.response is not None else 0, reason, body, text)
    return map_common_error(exc)


def _by_status(status: int, reason: str | None, body: str, text: str) -> BackendError:
    if status == 429:
        return BackendOverloaded(text)
    if status in (400, 413, 422):
        return _validation(reason, f"{reason} {body}", text)
    # llama.cpp's server answers a request that fails its pydantic validation with 500: a refusal, shown with
    # the server's reason; any other 500 is a failed answer
    if status == 500 and reason is not None and PYDANTIC_FAILURE.search(reason):
        return _validation(reason, reason, text)
    if status in (502, 503, 504):
        return BackendUnavailable(text)
    return GenerationFailed(text)


PYDANTIC_FAILURE = re.compile(r"\d+ validation errors?\b")
# How servers say a prompt does not fit: OpenAI and llama.cpp (code context_length_exceeded, "maximum context
# length"), TGI and backends.serve ("must have less than N tokens", "`inputs` tokens + `max_new_tokens`"), vLLM
# ("longer than the maximum model length"), llama.cpp's log wording ("exceed context window")
TOO_LONG = re.compile(
    r"context_length_exceeded|maximum context length|exceeds? (the )?context window|must have less than \d+ tokens"
    r"|`inputs` tokens \+ `max_new_tokens`|longer than the maximum model length|prompt is too long",
    re.IGNORECASE,
)


def _server_error(response: Any) -> tuple[str | None, str]:
    """The server's own error message (None when its body has none: never the client's exception text), and the
    body as text (it may hold a code such as context_length_exceeded)."""
    if response is None:
        return None, ""
    try:
        return error_message(response.json()), response.text
    except (ValueError, httpx2.ResponseNotRead, UnicodeDecodeError):
        return None, ""


def _validation(reason: str | None, evidence: str, text: str) -> BackendError:
    if TOO_LONG.search(evidence):
        return InputTooLong(text)
    return Rejected(text, reason=reason)


def hf_client(url: str, api_key: str | None, timeouts: RemoteTimeouts) -> AsyncInferenceClient:
    """A huggingface_hub client for one replica that never sends the machine's own HF token.

    huggingface_hub falls back to the locally saved token for any base URL; an explicit (empty) authorization
    header overrides it when the model's config names no API key.
    """
    limit = max(timeouts.connect, timeouts.first_token, timeouts.between_tokens)
    if api_key:
        return AsyncInferenceClient(base_url=url, api_key=api_key, timeout=limit)
    return AsyncInferenceClient(base_url=url, headers={"authorization": ""}, timeout=limit)


def _stream_error(event: Mapping[str, Any]) -> BackendError:
    """The backend error for an error event in a stream (TGI's `error` / `error_type`; OpenAI-style servers send an
    object without a type), as huggingface_hub maps them."""
    message = str(event["error"])
    text = f"stream error ({event.get('error_type')}): {message}"
    match event.get("error_type"):
        case "overloaded":
            return BackendOverloaded(text)
        case "validation":
            return _validation(message, message, text)
        case _:
            return GenerationFailed(text)


def _without_none(value: Any) -> Any:
    """`value` with None entries left out of every dict in it (servers take a missing field as its default)."""
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


def chat_url(url: str) -> str:
    """The chat completions route under a server's base URL (as huggingface_hub builds it)."""
    path = httpx2.URL(url).path.rstrip("/")
    if path.endswith("/chat/completions"):
        return url
    base = url.rstrip("/")
    return f"{base}/chat/completions" if path.endswith("/v1") else f"{base}/v1/chat/completions"


class HfClient:
    """One replica: streamed answers straight from TGI's `/` route or the OpenAI-style chat route, the rest through
    huggingface_hub."""

    def __init__(self, url: str, api_key: str | None, timeouts: RemoteTimeouts) -> None:
        self._client = hf_client(url, api_key, timeouts)
        self._url = url
        self._headers = {"authorization": f"Bearer {api_key}" if api_key else "", "content-type": "application/json"}
        self._timeout = max(timeouts.connect, timeouts.first_token, timeouts.between_tokens)
        self._http: tuple[asyncio.AbstractEventLoop, httpx2.AsyncClient] | None = None  # kept connections, per loop

    def _session(self) -> httpx2.AsyncClient:
        """The HTTP client of the running event loop (its connections are kept from one answer to the next)."""
        loop = asyncio.get_running_loop()
        if self._http is None or self._http[0] is not loop:
            self._http = (loop, httpx2.AsyncClient(timeout=self._timeout, headers=self._headers))
        return self._http[1]

    async def _events(self, url: str, body: Mapping[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
        """POST `body` and yield the server-sent events of the answer as dicts, until `[DONE]` or the end."""
        async with self._session().stream("POST", url, content=orjson.dumps(_without_none(body))) as response:
            if response.status_code >= 400:
                await response.aread()
                reason, text = _server_error(response)
                raise _by_status(response.status_code, reason, text, f"HTTP {response.status_code}: {text[:500]}")
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue  # blank lines between events, comments, event names
                payload = line[5:].strip()
                if payload == "[DONE]":
                    return
                event = orjson.loads(payload)
                if event.get("error") is not None:
                    raise _stream_error(event)
                yield event

    def chat(
        self,
        messages: Sequence[Message],
        *,
        model: str,
        params: GenerationParams,
        stop: Sequence[str],
        extra: Mapping[str, Any],
    ) -> AsyncGenerator[Chunk, None]:
        """Stream a /v1/chat/completions answer as chunks; `extra` goes in the body as it is (e.g. top_k)."""
        request = {
            "model": model,
            "max_tokens": params.max_new_tokens,
            "extra_body": dict(extra) or None,
            **_sampling(params, stop, chat=True),
        }
        return _mapped(self._chat([{**m} for m in messages], request))

    def generate(
        self, prompt: str, *, params: GenerationParams, stop: Sequence[str], adapter_id: str | None
    ) -> AsyncGenerator[TokenEvent, None]:
        """Stream TGI's `text_generation(stream=True, details=True)` token by token."""
        return _mapped(self._generate(prompt, params=params, stop=stop, adapter_id=adapter_id))

    async def _chat(self, messages: list[dict[str, Any]], request: dict[str, Any]) -> AsyncGenerator[Chunk, None]:
        extra = request.get("extra_body") or {}
        body = {k: v for k, v in request.items() if k != "extra_body"}
        body |= {"messages": messages, "stream": True, "stream_options": {"include_usage": True}, **extra}
        counted = 0  # tokens reported so far: one per text piece, until the server's usage says otherwise
        finished = seen = False
        async for event in self._events(chat_url(self._url), body):
            seen = True
            choices = event.get("choices")
            choice = choices[0] if choices else None
            finished = finished or (choice is not None and choice.get("finish_reason") is not None)
            content = choice.get("delta", {}).get("content") if choice is not None else None
            if content:
                counted += 1
                yield Chunk(content)
            used = (event.get("usage") or {}).get("completion_tokens")
            if used and used != counted:  # the server's own count (stream_options.include_usage) is the truth
                yield Chunk("", tokens=used - counted)
                counted = used
        if not seen:
            raise await self._empty_stream(messages, request)
        if not finished:  # servers end every answer with a finish_reason; a bare end means a dropped connection
            raise GenerationFailed("the stream ended without a finish reason (the server went away)")

    async def _empty_stream(self, messages: list[dict[str, Any]], request: dict[str, Any]) -> BackendError:
        """What an answer that streamed nothing at all means, asked of the server without streaming.

        llama.cpp's server answers a streamed prompt longer than its context with HTTP 200 and an empty stream
        (the error only goes to its log); asked without streaming, it says so (400 context_length_exceeded).
        The connection the empty stream came on is closed by then: a request that meets it is sent once more.
        """
        empty = GenerationFailed("the server sent an empty stream")
        for _ in range(2):
            try:
                await self._client.chat_completion(messages, stream=False, **{**request, "max_tokens": 1})
            except httpx2.TransportError:
                continue
            except Exception as exc:
                error = map_error(exc)
                return error if isinstance(error, InputTooLong | Rejected) else empty
            return empty  # answered without streaming: the empty stream was not about the request
        return empty

    async def _generate(
        self, prompt: str, *, params: GenerationParams, stop: Sequence[str], adapter_id: str | None
    ) -> AsyncGenerator[TokenEvent, None]:
        parameters = {
            "adapter_id": adapter_id,
            "details": True,
            "max_new_tokens": params.max_new_tokens,
            "return_full_text": False,
            **_sampling(params, stop, chat=False),
            **extra_body(GENERIC, params),  # top_k and repetition_penalty under TGI's own names
        }
        async for event in self._events(self._url, {"inputs": prompt, "parameters": parameters, "stream": True}):
            token = event["token"]
            # TGI's last event carries the whole text
            yield TokenEvent(token["text"], bool(token.get("special")), event.get("generated_text") is not None)


def _sampling(params: GenerationParams, stop: Sequence[str], *, chat: bool) -> dict[str, Any]:
    """The sampling arguments that chat_completion and text_generation both take, under the same names.

    Greedy decoding (`do_sample: false`) leaves the sampling parameters out: on TGI's /generate any of them would
    turn sampling back on, and chat routes (TGI's, vLLM's, OpenAI's) read `temperature: 0` as greedy.
    """
    common: dict[str, Any] = {"seed": params.seed, "stop": list(stop) or None}
    if not chat:
        common["do_sample"] = params.do_sample  # TGI's own flag; chat routes have none
    if not params.do_sample:
        return {"temperature": 0.0 if chat else None, **common}
    return {"temperature": params.temperature, "top_p": params.top_p, **common}


async def _mapped(stream: AsyncIterator[T]) -> AsyncGenerator[T, None]:
    """Forward a stream, turning whatever huggingface_hub or the connection raises into a BackendError."""
    try:
        async for item in stream:
            yield item
    except (BackendError, asyncio.CancelledError, GeneratorExit):
        raise
    except Exception as exc:
        raise map_error(exc) from exc
