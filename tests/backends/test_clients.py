"""The HTTP client is a hook: a second client library streams through the same backend, RemoteBackend untouched."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any

import httpx

from backends.base import Chunk, GenerationFailed, GenerationParams, Message
from backends.clients import ClientFactory, RemoteTimeouts, TokenEvent
from backends.hf_client import HfClient
from backends.openai import OpenAIBackend
from tests.support.helpers import Process

ASK = [Message(role="user", content="Bonjour !")]
PARAMS = GenerationParams(max_new_tokens=12, seed=5, temperature=0.8)


class HttpxClient:
    """A minimal OpenAI chat client on plain httpx (SSE parsed by hand): another library behind the hook."""

    def __init__(self, url: str, api_key: str | None, timeouts: RemoteTimeouts) -> None:
        self.url = url
        self.headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self.timeout = httpx.Timeout(timeouts.first_token, connect=timeouts.connect)

    async def chat(
        self,
        messages: Sequence[Message],
        *,
        model: str,
        params: GenerationParams,
        stop: Sequence[str],
        extra: Mapping[str, Any],
    ) -> AsyncGenerator[Chunk, None]:
        body = {"model": model, "messages": [dict(m) for m in messages], "stream": True, "seed": params.seed, **extra}
        body |= {"max_tokens": params.max_new_tokens, "temperature": params.temperature, "top_p": params.top_p}
        async with (
            httpx.AsyncClient(timeout=self.timeout, trust_env=False) as http,
            http.stream("POST", f"{self.url}/v1/chat/completions", json=body, headers=self.headers) as reply,
        ):
            async for line in reply.aiter_lines():
                if not line.startswith("data:") or line.endswith("[DONE]"):
                    continue
                text = json.loads(line[5:])["choices"][0]["delta"].get("content")
                if text:
                    yield Chunk(text)

    async def generate(
        self, prompt: str, *, params: GenerationParams, stop: Sequence[str], adapter_id: str | None
    ) -> AsyncGenerator[TokenEvent, None]:
        raise GenerationFailed("this client speaks only the chat route")
        yield TokenEvent("")  # pragma: no cover (makes this an async generator)


def test_another_client_library_plugs_in(serve: Process) -> None:
    def answer(client: ClientFactory = HfClient) -> str:
        backend = OpenAIBackend(name="o", urls=[serve.url], model="lora-b", client=client)

        async def run() -> str:
            return "".join([c.text async for c in backend.stream(ASK, PARAMS)])

        return asyncio.run(run())

    mine = answer(HttpxClient)
    assert mine and mine == answer()  # the same seeded answer as through the default huggingface_hub client


def test_the_chat_route_is_built_as_huggingface_hub_builds_it() -> None:
    from backends.hf_client import chat_url

    assert chat_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080/v1/chat/completions"
    assert chat_url("http://127.0.0.1:8080/") == "http://127.0.0.1:8080/v1/chat/completions"
    assert chat_url("http://h/v1") == "http://h/v1/chat/completions"
    assert chat_url("http://h/api/v1/") == "http://h/api/v1/chat/completions"
    assert chat_url("http://h/v1/chat/completions") == "http://h/v1/chat/completions"
    assert chat_url("http://h/proxy") == "http://h/proxy/v1/chat/completions"


def test_stream_error_events_map_as_huggingface_hub_maps_them() -> None:
    from backends.base import BackendOverloaded, InputTooLong
    from backends.clients import Rejected
    from backends.hf_client import _stream_error

    assert isinstance(_stream_error({"error": "Model is overloaded", "error_type": "overloaded"}), BackendOverloaded)
    too_long = {"error": "Input validation error: `inputs` must have less than 512 tokens", "error_type": "validation"}
    assert isinstance(_stream_error(too_long), InputTooLong)
    refused = _stream_error({"error": "Input validation error: `top_p` must be > 0.0", "error_type": "validation"})
    assert isinstance(refused, Rejected)
    assert isinstance(_stream_error({"error": "CUDA out of memory", "error_type": "generation"}), GenerationFailed)
    assert isinstance(_stream_error({"error": {"message": "boom", "type": "server_error"}}), GenerationFailed)
