"""The default `InferenceClient`: huggingface_hub's AsyncInferenceClient, its errors mapped to BackendErrors."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Any, TypeVar

import httpx2
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
from backends.clients import Rejected, RemoteTimeouts, TokenEvent, map_common_error

T = TypeVar("T")


def map_error(exc: BaseException) -> BackendError:
    """The backend error (with its user sentence) for anything huggingface_hub or the server raised."""
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, hf_errors.OverloadedError):
        return BackendOverloaded(text)
    if isinstance(exc, hf_errors.ValidationError):
        return _validation(str(exc), text)
    if isinstance(exc, hf_errors.TextGenerationError):  # generation, incomplete_generation, unknown
        return GenerationFailed(text)
    if isinstance(exc, (hf_errors.InferenceTimeoutError, httpx2.TimeoutException)):
        return BackendTimeout(text)
    if isinstance(exc, httpx2.ConnectError):
        return BackendUnavailable(text)
    if isinstance(exc, hf_errors.HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else 0
        if status == 429:
            return BackendOverloaded(text)
        if status in (413, 422):
            return _validation(str(exc), text)
        if status in (502, 503, 504):
            return BackendUnavailable(text)
        return GenerationFailed(text)
    return map_common_error(exc)


def _validation(message: str, text: str) -> BackendError:
    if re.search(r"tokens|too long|context length|maximum context", message, re.IGNORECASE):
        return InputTooLong(text)
    return Rejected(text)


def hf_client(url: str, api_key: str | None, timeouts: RemoteTimeouts) -> AsyncInferenceClient:
    """A huggingface_hub client for one replica that never sends the machine's own HF token.

    huggingface_hub falls back to the locally saved token for any base URL; an explicit (empty) authorization
    header overrides it when the model's config names no API key.
    """
    limit = max(timeouts.connect, timeouts.first_token, timeouts.between_tokens)
    if api_key:
        return AsyncInferenceClient(base_url=url, api_key=api_key, timeout=limit)
    return AsyncInferenceClient(base_url=url, headers={"authorization": ""}, timeout=limit)


class HfClient:
    """One replica through huggingface_hub: TGI's `/` route and the OpenAI-style chat route."""

    def __init__(self, url: str, api_key: str | None, timeouts: RemoteTimeouts) -> None:
        self._client = hf_client(url, api_key, timeouts)

    def chat(
        self, messages: Sequence[Message], *, model: str, params: GenerationParams, stop: Sequence[str]
    ) -> AsyncGenerator[Chunk, None]:
        """Stream a /v1/chat/completions answer as chunks; top_k and repetition_penalty go in the body."""
        return _mapped(self._chat(messages, model=model, params=params, stop=stop))

    def generate(
        self, prompt: str, *, params: GenerationParams, stop: Sequence[str], adapter_id: str | None
    ) -> AsyncGenerator[TokenEvent, None]:
        """Stream TGI's `text_generation(stream=True, details=True)` token by token."""
        return _mapped(self._generate(prompt, params=params, stop=stop, adapter_id=adapter_id))

    async def _chat(
        self, messages: Sequence[Message], *, model: str, params: GenerationParams, stop: Sequence[str]
    ) -> AsyncGenerator[Chunk, None]:
        events = await self._client.chat_completion(
            [dict(m) for m in messages],
            model=model,
            stream=True,
            max_tokens=params.max_new_tokens,
            extra_body=_tgi_only(params) or None,  # the chat route takes TGI's own parameters in the body
            **_sampling(params, stop, chat=True),
        )
        finished = False
        async for event in events:
            if not event.choices:
                continue
            finished = finished or event.choices[0].finish_reason is not None
            text = event.choices[0].delta.content or ""
            if text:
                yield Chunk(text)
        if not finished:  # servers end every answer with a finish_reason; a bare end means a dropped connection
            raise GenerationFailed("the stream ended without a finish reason (the server went away)")

    async def _generate(
        self, prompt: str, *, params: GenerationParams, stop: Sequence[str], adapter_id: str | None
    ) -> AsyncGenerator[TokenEvent, None]:
        events = await self._client.text_generation(
            prompt,
            stream=True,
            details=True,
            return_full_text=False,
            adapter_id=adapter_id,
            max_new_tokens=params.max_new_tokens,
            **_sampling(params, stop, chat=False),
            **_tgi_only(params),
        )
        async for event in events:
            # TGI's last event carries the whole text
            yield TokenEvent(event.token.text, event.token.special, event.generated_text is not None)


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


def _tgi_only(params: GenerationParams) -> dict[str, Any]:
    """top_k and repetition_penalty, where set: TGI parameters that the OpenAI-style chat route has no name for
    (top_k only when sampling: it would turn sampling on)."""
    named = {"top_k": params.top_k if params.do_sample else None, "repetition_penalty": params.repetition_penalty}
    return {name: value for name, value in named.items() if value is not None}


async def _mapped(stream: AsyncIterator[T]) -> AsyncGenerator[T, None]:
    """Forward a stream, turning whatever huggingface_hub or the connection raises into a BackendError."""
    try:
        async for item in stream:
            yield item
    except (BackendError, asyncio.CancelledError, GeneratorExit):
        raise
    except Exception as exc:
        raise map_error(exc) from exc
