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
