"""The `tgi` kind: text-generation-inference's native streaming route, prompted with a Corral template."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Unpack

import httpx
from pydantic import model_validator

import prompts
from backends import server_profiles
from backends.base import Chunk, GenerationFailed, GenerationParams, Message
from backends.clients import InferenceClient
from backends.entries import RemoteEntry
from backends.openai import served_names
from backends.remote import RemoteBackend, RemoteOptions, json_or_none
from backends.streaming import StopMatcher

ADAPTER_PROBE = "Corral checks that this adapter is loaded."


class TgiModel(RemoteEntry):
    """A model on text-generation-inference (or `backends.serve`), prompted with a Corral template."""

    backend: Literal["tgi"]
    adapter_id: str | None = None  # a LoRA adapter on a multi-LoRA TGI
    server_chat_template: bool = False  # true: use /v1/chat/completions with the server's own template

    @model_validator(mode="after")
    def _template_needed(self) -> TgiModel:
        if self.template == prompts.TOKENIZER and not self.server_chat_template:
            raise ValueError(
                "a tgi model needs a prompt template name (e.g. chatml), or server_chat_template: true "
                "to let the server apply the model's own chat template"
            )
        return self


@dataclass
class ServerLimits:
    """Limits a TGI server reports in /info."""

    max_total_tokens: int | None = None
    max_input_tokens: int | None = None
    max_stop_sequences: int = 4


class TgiBackend(RemoteBackend):
    """Streams from TGI's `/` route (`text_generation(stream=True, details=True)`), or its chat route."""

    kind = "tgi"

    def __init__(
        self,
        *,
        name: str,
        urls: list[str],
        template: str,
        adapter_id: str | None = None,
        server_chat_template: bool = False,
        **options: Unpack[RemoteOptions],
    ) -> None:
        super().__init__(name=name, urls=urls, **options)
        self.template = template
        self.adapter_id = adapter_id
        self.server_chat_template = server_chat_template
        self.limits = ServerLimits()

    def _prepare(self, messages: Sequence[Message], params: GenerationParams) -> Any:
        if self.server_chat_template:
            return list(messages)
        try:
            return prompts.render(self.template, messages)
        except prompts.PromptError as exc:
            raise GenerationFailed(str(exc)) from exc

    def _stops(self, params: GenerationParams) -> list[str]:
        """Template and request stop strings, as many as the server accepts."""
        stops = [*prompts.stop_strings(self.template), *params.stop]
        return list(dict.fromkeys(stops))[: self.limits.max_stop_sequences]

    def _max_new_tokens(self, params: GenerationParams) -> int:
        if self.limits.max_total_tokens is None:
            return params.max_new_tokens
        return max(1, min(params.max_new_tokens, self.limits.max_total_tokens - 1))

    async def _open(
        self, client: InferenceClient, request: Any, params: GenerationParams
    ) -> AsyncGenerator[Chunk, None]:
        stops = self._stops(params)
        limited = params.model_copy(update={"max_new_tokens": self._max_new_tokens(params)})
        if self.server_chat_template:
            extra = server_profiles.extra_body(server_profiles.GENERIC, limited)
            chat = client.chat(request, model=self.adapter_id or "tgi", params=limited, stop=stops, extra=extra)
            async for chunk in chat:
                yield chunk
            return
        matcher = StopMatcher(stops)  # TGI keeps the stop string in the text; the arena shows the answer alone
        finished = False
        async for event in client.generate(request, params=limited, stop=stops, adapter_id=self.adapter_id):
            finished = event.last
            if event.special:
                continue
            text = matcher.feed(event.text)
            if text:
                yield Chunk(text)
            if matcher.stopped:
                return
        if not finished:
            raise GenerationFailed("the stream ended before its final event (the server went away)")
        tail = matcher.flush()
        if tail:
            yield Chunk(tail, tokens=0)

    def _probe(self, http: httpx.Client, url: str, headers: dict[str, str]) -> bool:
        if http.get(f"{url}/health", headers=headers).status_code != 200:
            return False
        info = json_or_none(http.get(f"{url}/info", headers=headers))
        if isinstance(info, dict):
            self.limits = ServerLimits(
                max_total_tokens=info.get("max_total_tokens"),
                max_input_tokens=info.get("max_input_tokens"),
                max_stop_sequences=int(info.get("max_stop_sequences") or 4),
            )
        if self.adapter_id is None:
            return True
        if adapter_listed(http, url, self.adapter_id, headers):
            return True
        applied = adapter_applied(http, url, self.adapter_id, headers)
        if applied is None:  # busy, warming up or odd answer: no verdict, the server itself is healthy
            return True
        if applied:
            return True
        return self._misconfigured(f"the server at {url} does not serve adapter '{self.adapter_id}'")


def adapter_listed(http: httpx.Client, url: str, adapter_id: str, headers: dict[str, str]) -> bool:
    """Whether /v1/models lists the adapter (vLLM and backends.serve do; TGI lists only the base model)."""
    return adapter_id in (served_names(json_or_none(http.get(f"{url}/v1/models", headers=headers))) or [])


def adapter_applied(http: httpx.Client, url: str, adapter_id: str, headers: dict[str, str]) -> bool | None:
    """Whether a greedy one-token answer with the adapter differs from the base model's; None: no verdict.

    TGI answers an unknown adapter_id with the base model instead of an error, so equal log-probabilities
    mean the adapter is not loaded. A 422 (a server that checks adapter names) means it is not; any other
    failure (busy, warming up, a malformed body) gives no verdict.
    """

    def first_token(extra: dict[str, Any]) -> tuple[int, float] | str | None:
        body = {"inputs": ADAPTER_PROBE, "parameters": {"max_new_tokens": 1, "details": True, **extra}}
        reply = http.post(f"{url}/generate", json=body, headers=headers)
        if reply.status_code == 422:
            return "refused"
        data = json_or_none(reply)
        try:
            token = data["details"]["tokens"][0] if reply.status_code == 200 else None
            return None if token is None else (int(token["id"]), float(token["logprob"]))
        except (KeyError, IndexError, TypeError, ValueError):
            return None

    adapted = first_token({"adapter_id": adapter_id})
    if adapted == "refused":
        return False
    base = first_token({})
    if not isinstance(base, tuple) or not isinstance(adapted, tuple):
        return None
    return base != adapted


def build(entry: TgiModel, options: RemoteOptions) -> TgiBackend:
    """The backend of a `tgi` entry."""
    return TgiBackend(
        name=entry.name,
        urls=entry.endpoints,
        template=entry.template,
        adapter_id=entry.adapter_id,
        server_chat_template=entry.server_chat_template,
        **options,
    )
