"""How each family of OpenAI-compatible servers takes the sampling parameters that OpenAI's API has no name for.

A chat completion request names `temperature`, `top_p`, `seed`, `stop` and `max_tokens` the same way everywhere;
`top_k` and `repetition_penalty` are extra body fields whose names and defaults differ per server. A profile says
which field carries each, and which of the server's own sampling defaults to switch off when the config leaves a
parameter unset, so that a model's `generation:` means the same on every server (Corral's unset = not applied).

Facts (../shared/reference/peers.md, the servers' docs, and probes of each on 127.0.0.1): vLLM and SGLang read
`top_k` and `repetition_penalty` at the top level; llama.cpp's server reads `repeat_penalty` (default 1.1) and
`top_k` (default 40, 0 = off) and also applies `min_p` 0.05 unless told otherwise; OpenAI's own API refuses unknown
fields. `transformers serve` refuses both extra fields (422 "Unexpected fields") and samples only when asked through
its `generation_config` field (a JSON string of a transformers GenerationConfig): otherwise a model folder whose
generation_config.json does not turn sampling on is decoded greedily whatever the temperature.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from backends.base import GenerationParams

ExtraParameter = Literal["top_k", "repetition_penalty"]
EXTRA_PARAMETERS: tuple[ExtraParameter, ...] = ("top_k", "repetition_penalty")


@dataclass(frozen=True)
class ServerProfile:
    """One server family: the body field of each extra parameter (None: it has none), and what switches off the
    server's own sampling defaults when a parameter is left unset."""

    fields: Mapping[ExtraParameter, str | None]
    neutral: Mapping[str, Any] = field(default_factory=dict)
    # True: sampling (`do_sample`) and the extra fields go inside a `generation_config` JSON string (transformers)
    in_generation_config: bool = False
    # How a mistyped `model:` is found at start. "listing": GET /v1/models is the only evidence (llama.cpp answers
    # to any name). "request": only a one-token request naming the model tells (transformers serve lists its
    # download cache, not the model it serves). "either": a name missing from the listing is asked for once before
    # it is called wrong (Ollama lists "llama3.2:latest" and answers to "llama3.2").
    name_check: Literal["listing", "request", "either"] = "either"


GENERIC = ServerProfile({"top_k": "top_k", "repetition_penalty": "repetition_penalty"})
PROFILES: dict[str, ServerProfile] = {
    "generic": GENERIC,  # vLLM, SGLang, TGI's chat route, backends.serve
    "llama.cpp": ServerProfile(
        {"top_k": "top_k", "repetition_penalty": "repeat_penalty"},
        neutral={"top_k": 0, "repeat_penalty": 1.0, "min_p": 0.0},
        name_check="listing",
    ),
    "openai": ServerProfile({"top_k": None, "repetition_penalty": None}),  # api.openai.com: no extra fields
    # TGI's Messages API and backends.serve: any model name is the base model, so only the listing tells
    "tgi": ServerProfile(GENERIC.fields, name_check="listing"),
    "transformers": ServerProfile(GENERIC.fields, in_generation_config=True, name_check="request"),
}


def resolve(name: str, overrides: Mapping[ExtraParameter, str | None]) -> ServerProfile:
    """The named profile with the config's own field names laid over it (KeyError for an unknown name)."""
    base = PROFILES[name]
    return replace(base, fields={**base.fields, **overrides})


def unsendable(profile: ServerProfile, params: GenerationParams) -> list[ExtraParameter]:
    """The parameters set in `params` that this server has no field for (a config mistake to report)."""
    return [p for p in EXTRA_PARAMETERS if getattr(params, p) is not None and profile.fields.get(p) is None]


def extra_body(profile: ServerProfile, params: GenerationParams) -> dict[str, Any]:
    """The extra fields of one chat request: the server's neutral values, then the parameters that are set.

    `top_k` only applies when sampling (it would otherwise turn sampling on where a server reads it so).
    """
    values: dict[ExtraParameter, Any] = {
        "top_k": params.top_k if params.do_sample else None,
        "repetition_penalty": params.repetition_penalty,
    }
    body = dict(profile.neutral)
    for parameter, value in values.items():
        name = profile.fields.get(parameter)
        if name is not None and value is not None:
            body[name] = value
    if profile.in_generation_config:
        # greedy alone needs nothing (temperature 0 says it); top-level temperature, top_p and seed apply on top
        if not params.do_sample and not body:
            return {}
        return {"generation_config": json.dumps({"do_sample": params.do_sample, **body})}
    return body
