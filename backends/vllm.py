"""The `vllm` kind: a vLLM OpenAI-compatible server (`vllm serve MODEL`), streamed through /v1/chat/completions.

vLLM's facts (docs.vllm.ai, "OpenAI-Compatible Server"): every request names a model the server serves (the
`--served-model-name`, or a `--lora-modules` adapter name), and /v1/models lists them; sampling parameters that
OpenAI lacks (top_k, repetition_penalty, ...) are accepted at the top level of the request body; `GET /health`
answers 200 once the engine is up.
"""

from __future__ import annotations

from typing import Literal

import httpx
from pydantic import Field

from backends.entries import RemoteEntry
from backends.openai import OpenAIBackend
from backends.remote import RemoteOptions
from backends.tgi import adapter_listed


class VllmModel(RemoteEntry):
    """A model on a vLLM server; `model` is its served model name (or LoRA module name), which vLLM requires."""

    backend: Literal["vllm"]
    model: str = Field(min_length=1)


class VllmBackend(OpenAIBackend):
    """An OpenAI-style backend whose health is vLLM's /health plus its /v1/models listing the served name."""

    kind = "vllm"

    def _probe(self, http: httpx.Client, url: str, headers: dict[str, str]) -> bool:
        if http.get(f"{url}/health", headers=headers).status_code != 200:
            return False
        if adapter_listed(http, url, self.model, headers):
            return True
        # vLLM answers a request for a name it does not serve with 404: a configuration mistake, found at start
        return self._misconfigured(f"the vLLM server at {url} does not serve a model named '{self.model}'")


def build(entry: VllmModel, options: RemoteOptions) -> VllmBackend:
    """The backend of a `vllm` entry."""
    return VllmBackend(name=entry.name, urls=entry.endpoints, model=entry.model, **options)
