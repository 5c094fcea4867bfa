"""The `openai` kind: any OpenAI-compatible /v1/chat/completions server (vLLM, SGLang, TGI, llama.cpp, Ollama)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from pathlib import Path
from typing import Any, Literal, Unpack

import httpx
from pydantic import Field, field_validator, model_validator

from backends import server_profiles
from backends.base import Chunk, GenerationParams, Message
from backends.clients import InferenceClient, error_message, shown_reason
from backends.context_guard import ContextGuard, ContextGuardError
from backends.entries import EntryError, RemoteEntry
from backends.remote import RemoteBackend, RemoteOptions, json_or_none
from backends.server_profiles import GENERIC, ExtraParameter, ServerProfile
from backends.streaming import StopMatcher


class OpenAIModel(RemoteEntry):
    """A model behind an OpenAI-compatible /v1/chat/completions server (vLLM, SGLang, TGI, llama.cpp, Ollama)."""

    backend: Literal["openai"]
    model: str = Field(min_length=1)  # the served model name sent in each request, checked against /v1/models
    server: str = "generic"  # how the server names the sampling fields OpenAI lacks (backends/server_profiles.py)
    # per-field overrides of the profile's names (null: the server has no such field; it is not sent)
    sampling_fields: dict[ExtraParameter, str | None] = Field(default_factory=dict)
    # for servers that run any prompt length (transformers serve): Corral counts the prompt with this tokenizer
    # and refuses a chat longer than `max_input_tokens` itself (backends/context_guard.py); both or neither
    tokenizer: str | None = None
    max_input_tokens: int | None = Field(default=None, ge=1)

    @field_validator("server")
    @classmethod
    def _known_server(cls, value: str) -> str:
        if value not in server_profiles.PROFILES:
            raise ValueError(f"unknown server profile '{value}' (known: {', '.join(server_profiles.PROFILES)})")
        return value

    @model_validator(mode="after")
    def _guard_complete(self) -> OpenAIModel:
        if (self.tokenizer is None) != (self.max_input_tokens is None):
            raise ValueError("`tokenizer` and `max_input_tokens` go together: Corral counts with one against the other")
        return self

    @model_validator(mode="after")
    def _sendable(self) -> OpenAIModel:
        missing = server_profiles.unsendable(self.profile, self.generation)
        if missing:
            raise ValueError(
                f"the '{self.server}' server has no field for {' and '.join(missing)}: remove it from `generation`, "
                "or name the server's field under `sampling_fields`"
            )
        return self

    def with_paths_resolved(self, folder: Path, where: str) -> tuple[OpenAIModel, list[str]]:
        """`tokenizer`, when it is a folder, resolved against the config's folder; a missing one is a problem."""
        return self._paths_resolved(folder, where, ("tokenizer",))

    @property
    def profile(self) -> ServerProfile:
        """The server profile with this entry's field names laid over it."""
        return server_profiles.resolve(self.server, self.sampling_fields)


class OpenAIBackend(RemoteBackend):
    """Streams chat completions; the server applies the model's chat template."""

    kind = "openai"

    def __init__(
        self,
        *,
        name: str,
        urls: list[str],
        model: str,
        profile: ServerProfile = GENERIC,
        guard: ContextGuard | None = None,
        **options: Unpack[RemoteOptions],
    ) -> None:
        super().__init__(name=name, urls=urls, **options)
        self.model = model
        self.profile = profile
        self.guard = guard
        self._name_answered: set[str] = set()  # replicas that answered a request naming the model

    def _prepare(self, messages: Sequence[Message], params: GenerationParams) -> Any:
        if self.guard is not None:
            self.guard.check(messages)
        return list(messages)

    async def _open(
        self, client: InferenceClient, request: Any, params: GenerationParams
    ) -> AsyncGenerator[Chunk, None]:
        """The server's chunks, cut at a stop string: most servers cut it themselves, transformers serve keeps it."""
        extra = server_profiles.extra_body(self.profile, params)
        matcher = StopMatcher(params.stop)
        async for chunk in client.chat(request, model=self.model, params=params, stop=params.stop, extra=extra):
            text = matcher.feed(chunk.text)
            if text or chunk.tokens:
                yield Chunk(text, chunk.tokens)  # a piece held back (it may begin a stop string) still counts
            if matcher.stopped:
                return
        tail = matcher.flush()
        if tail:
            yield Chunk(tail, tokens=0)

    def _probe(self, http: httpx.Client, url: str, headers: dict[str, str]) -> bool:
        """Up, and serving the configured model name (checked as the server's profile says)."""
        check = self.profile.name_check
        if check == "request":
            return http.get(f"{url}/health", headers=headers).status_code == 200 and self._ask(http, url, headers)
        models = http.get(f"{url}/v1/models", headers=headers)
        if models.status_code in (401, 403):
            return self._refused_key(url, models.status_code)
        if models.status_code != 200:  # no listing, or a failing one: /health says whether it is up
            if http.get(f"{url}/health", headers=headers).status_code != 200:
                return False
            return check == "listing" or self._ask(http, url, headers)
        listed = served_names(json_or_none(models))
        if listed is None or self.model in listed or url in self._name_answered:
            return True
        evidence = f"its /v1/models lists: {', '.join(listed) or 'nothing'}"
        if check == "either":
            return self._ask(http, url, headers, evidence)
        return self._wrong_name(url, evidence)  # llama.cpp answers to any name: only its listing tells

    def _ask(self, http: httpx.Client, url: str, headers: dict[str, str], evidence: str = "") -> bool:
        """A one-token request naming the model, once per replica until it is answered: a 4xx refusal means the
        name is wrong; a timeout, an overload or a 5xx is no verdict (asked again at the next probe)."""
        if url in self._name_answered:
            return True
        body = {"model": self.model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}
        try:
            reply = http.post(f"{url}/v1/chat/completions", json=body, headers=headers)
        except httpx.TimeoutException:
            return True
        if reply.status_code in (401, 403):
            return self._refused_key(url, reply.status_code)
        if 400 <= reply.status_code < 500 and reply.status_code not in (408, 429):
            reason = shown_reason(error_message(json_or_none(reply))) or f"HTTP {reply.status_code}."
            return self._wrong_name(url, "; ".join(filter(None, [f"asked for it, it answered: {reason}", evidence])))
        if reply.status_code == 200:
            self._name_answered.add(url)
        return True

    def _wrong_name(self, url: str, evidence: str) -> bool:
        return self._misconfigured(f"the server at {url} does not serve a model named '{self.model}' ({evidence})")

    def _refused_key(self, url: str, status: int) -> bool:
        return self._misconfigured(
            f"the server at {url} refused Corral's requests (HTTP {status}): check its API key (`api_key_env`)"
        )


def served_names(listing: Any) -> list[str] | None:
    """The model ids of a /v1/models answer; None when it is not an OpenAI-style listing."""
    data = listing.get("data") if isinstance(listing, dict) else None
    if not isinstance(data, list):
        return None
    return [str(m["id"]) for m in data if isinstance(m, dict) and "id" in m]


def build(entry: OpenAIModel, options: RemoteOptions) -> OpenAIBackend:
    """The backend of an `openai` entry (its tokenizer loaded now, when it counts its own prompts)."""
    guard = None
    if entry.tokenizer is not None and entry.max_input_tokens is not None:
        try:
            guard = ContextGuard.load(entry.tokenizer, entry.max_input_tokens)
        except ContextGuardError as exc:
            raise EntryError(f"model '{entry.name}': {exc}") from None
    return OpenAIBackend(
        name=entry.name, urls=entry.endpoints, model=entry.model, profile=entry.profile, guard=guard, **options
    )
