"""The `openai` kind: any OpenAI-compatible /v1/chat/completions server (vLLM, SGLang, TGI, llama.cpp, Ollama)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any, Literal, Unpack

import httpx
from pydantic import Field

from backends.base import Chunk, GenerationParams
from backends.clients import InferenceClient
from backends.entries import RemoteEntry
from backends.remote import RemoteBackend, RemoteOptions


class OpenAIModel(RemoteEntry):
    """A model behind an OpenAI-compatible /v1/chat/completions server (vLLM, SGLang, TGI, llama.cpp, Ollama)."""

    backend: Literal["openai"]
    model: str = Field(min_length=1)  # the served model name sent in each request


class OpenAIBackend(RemoteBackend):
    """Streams chat completions; the server applies the model's chat template."""

    kind = "openai"

    def __init__(self, *, name: str, urls: list[str], model: str, **options: Unpack[RemoteOptions]) -> None:
        super().__init__(name=name, urls=urls, **options)
        self.model = model

    async def _open(
        self, client: InferenceClient, request: Any, params: GenerationParams
    ) -> AsyncGenerator[Chunk, None]:
        async for chunk in client.chat(request, model=self.model, params=params, stop=params.stop):
            yield chunk

    def _probe(self, http: httpx.Client, url: str, headers: dict[str, str]) -> bool:
        return http.get(f"{url}/v1/models", headers=headers).status_code == 200


def build(entry: OpenAIModel, options: RemoteOptions) -> OpenAIBackend:
    """The backend of an `openai` entry."""
    return OpenAIBackend(name=entry.name, urls=entry.endpoints, model=entry.model, **options)
