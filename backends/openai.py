"""The `openai` backend: any OpenAI-compatible /v1/chat/completions server (vLLM, SGLang, TGI, llama.cpp, Ollama)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import httpx
from huggingface_hub import AsyncInferenceClient

from backends.base import Chunk, GenerationParams
from backends.remote import DEFAULT_TIMEOUTS, RemoteBackend, RemoteTimeouts, chat_chunks


class OpenAIBackend(RemoteBackend):
    """Streams chat completions; the server applies the model's chat template."""

    kind = "openai"

    def __init__(
        self,
        *,
        name: str,
        urls: list[str],
        model: str,
        api_key: str | None = None,
        timeouts: RemoteTimeouts = DEFAULT_TIMEOUTS,
        max_concurrent: int = 32,
    ) -> None:
        super().__init__(name=name, urls=urls, api_key=api_key, timeouts=timeouts, max_concurrent=max_concurrent)
        self.model = model

    async def _open(
        self, client: AsyncInferenceClient, request: Any, params: GenerationParams
    ) -> AsyncGenerator[Chunk, None]:
        async for chunk in chat_chunks(client, request, model=self.model, params=params, stop=params.stop):
            yield chunk

    def _probe(self, http: httpx.Client, url: str, headers: dict[str, str]) -> bool:
        return http.get(f"{url}/v1/models", headers=headers).status_code == 200
