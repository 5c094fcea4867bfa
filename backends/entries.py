"""The `models:` entries of the config file that every backend kind shares, as pydantic models.

This module stays light (pydantic and prompts; no torch, no HTTP client): the config is validated before any
backend library is loaded. Each kind's own entry class lives in its module (see backends/kinds.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator

import prompts
from backends.base import GenerationParams
from backends.clients import DEFAULT_TIMEOUTS  # the backends' own defaults, stated once


class EntryError(Exception):
    """A model entry that validates but cannot be built (e.g. its API key is not set); one sentence."""


class Strict(BaseModel):
    """A frozen pydantic model that refuses unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(Strict):
    """Where a model's weights come from and how they become servable (documentation, checked by tests)."""

    hub_id: str
    revision: str | None = None
    base: str | None = None  # the base model the published patch applies to
    form: Literal["full", "lora", "delta", "xor"]
    serve: Literal["tgi", "tgi-multi-lora", "merge-first", "local"]
    rebuild: str | None = None  # the one command that turns the published files into what `model` points at


class ModelEntry(Strict):
    """What every contestant has, whatever serves it; each kind adds its keys and a `backend: Literal[...]` tag."""

    backend: str
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/+-]{0,79}$")
    description: str = ""
    license: str = ""
    template: str = prompts.TOKENIZER
    generation: GenerationParams = GenerationParams()
    weight: float = Field(default=1.0, gt=0)
    aliases: list[str] = []  # other names the model may call itself (identity-leak guard)
    self_play: bool = False  # may be drawn against itself (different seed and temperature) for on-policy DPO pairs
    source: Source | None = None

    def with_paths_resolved(self, folder: Path, where: str) -> tuple[Self, list[str]]:
        """This entry with relative paths resolved against the config's folder, and the problems found."""
        return self, []

    def _paths_resolved(
        self, folder: Path, where: str, keys: tuple[str, ...], *, may_be_missing: tuple[str, ...] = ()
    ) -> tuple[Self, list[str]]:
        """`keys` that name local folders resolved against the config's folder (hub ids stay as they are); a
        missing folder is a problem unless its key is in `may_be_missing` (built at start)."""
        updates: dict[str, str] = {}
        problems: list[str] = []
        for key in keys:
            ref = getattr(self, key)
            if ref is None or not is_local_path(ref):
                continue
            path = (folder / Path(ref).expanduser()).resolve()
            if not path.exists() and key not in may_be_missing:
                problems.append(f"{where}.{key}: '{ref}' does not exist (resolved to {path})")
            updates[key] = str(path)
        return self.model_copy(update=updates), problems

    @field_validator("template")
    @classmethod
    def _known_template(cls, value: str) -> str:
        if value not in prompts.names():
            raise ValueError(f"unknown prompt template '{value}' (known: {', '.join(prompts.names())})")
        return value


class Timeouts(Strict):
    """Seconds to wait for a connection, for the first token, and between tokens."""

    connect: float = Field(default=DEFAULT_TIMEOUTS.connect, gt=0)
    first_token: float = Field(default=DEFAULT_TIMEOUTS.first_token, gt=0)
    between_tokens: float = Field(default=DEFAULT_TIMEOUTS.between_tokens, gt=0)


class RemoteEntry(ModelEntry):
    """A model behind one or more inference servers (replicas)."""

    endpoints: list[str] = Field(min_length=1)
    api_key_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    timeouts: Timeouts = Timeouts()
    max_concurrent_per_endpoint: int = Field(default=32, ge=1)
    health_interval: float = Field(default=10.0, gt=0)

    @field_validator("endpoints")
    @classmethod
    def _urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if not re.match(r"^https?://[^\s/]+", url):
                raise ValueError(f"'{url}' is not an http(s) URL")
        return [u.rstrip("/") for u in value]

    def api_key(self, env: Mapping[str, str]) -> str | None:
        """The API key named by `api_key_env`, read from `env`; EntryError when it is named but not set."""
        if self.api_key_env is None:
            return None
        key = env.get(self.api_key_env)
        if not key:
            raise EntryError(f"model '{self.name}': environment variable {self.api_key_env} (its API key) is not set")
        return key


def is_local_path(value: str) -> bool:
    """Whether a model reference is meant as a local folder rather than a hub id."""
    return value.startswith(("/", "./", "../", "~")) or Path(value).exists()
