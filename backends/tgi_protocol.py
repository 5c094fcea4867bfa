"""TGI's wire protocol as pure functions: request validation with TGI's messages, and the JSON shapes it sends."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from backends.base import GenerationParams

DEFAULT_MAX_NEW_TOKENS = 1024
# Chat `model` names that clients send when they mean "whatever this server serves".
PLACEHOLDER_MODELS = frozenset({"", "tgi", "dummy", "default"})


class ProtocolError(Exception):
    """A request TGI would refuse; carries the status and TGI's error_type."""

    status = 422
    error_type = "validation"

    def body(self) -> dict[str, str]:
        """The JSON error body TGI sends."""
        return {"error": str(self), "error_type": self.error_type}


class InvalidRequest(ProtocolError):
    """422 validation: the message starts with TGI's "Input validation error: "."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"Input validation error: {detail}")


class Overloaded(ProtocolError):
    """429: more requests in flight than the server takes."""

    status = 429
    error_type = "overloaded"

    def __init__(self) -> None:
        super().__init__("Model is overloaded")


class TemplateMissing(ProtocolError):
    """422: the chat route needs a chat template and the model has none."""

    error_type = "template_error"


class GenerationCrashed(ProtocolError):
    """424: the model failed while generating."""

    status = 424
    error_type = "generation"


@dataclass(frozen=True)
class Limits:
    """The server's validation limits (as reported in /info)."""

    max_input_tokens: int
    max_total_tokens: int
    max_stop_sequences: int = 4


@dataclass(frozen=True)
class GenerateRequest:
    """A validated /generate-style request (token counts are checked later, once the input is tokenized)."""

    inputs: str
    params: GenerationParams
    max_new_tokens_given: bool
    adapter_id: str | None
    details: bool
    return_full_text: bool
    truncate: int | None
    stop: tuple[str, ...] = field(default=())


def _number(params: dict[str, Any], key: str, kind: type) -> Any:
    value = params.get(key)
    if value is None:
        return None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise InvalidRequest(f"`{key}` must be a {'number' if kind is float else 'whole number'}")
    return value


def parse_generate(body: Any, limits: Limits, *, full_text_default: bool) -> GenerateRequest:
    """Validate a /generate, /generate_stream or / body the way TGI does."""
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object with `inputs` and `parameters`")
    inputs = body.get("inputs")
    if not isinstance(inputs, str):
        raise InvalidRequest("`inputs` must be a string")
    if not inputs:
        raise InvalidRequest("`inputs` cannot be empty")
    params = body.get("parameters") or {}
    if not isinstance(params, dict):
        raise InvalidRequest("`parameters` must be an object")
    temperature = _number(params, "temperature", float)
    top_p = _number(params, "top_p", float)
    top_k = _number(params, "top_k", int)
    typical_p = _number(params, "typical_p", float)
    rep = _number(params, "repetition_penalty", float)
    max_new = _number(params, "max_new_tokens", int)
    seed = _number(params, "seed", int)
    truncate = _number(params, "truncate", int)
    best_of = _number(params, "best_of", int)
    if temperature is not None and temperature <= 0:
        raise InvalidRequest("`temperature` must be strictly positive")
    if top_p is not None and not 0 < top_p < 1:
        raise InvalidRequest("`top_p` must be > 0.0 and < 1.0")
    if top_k is not None and top_k <= 0:
        raise InvalidRequest("`top_k` must be strictly positive")
    if typical_p is not None and not 0 < typical_p < 1:
        raise InvalidRequest("`typical_p` must be > 0.0 and < 1.0")
    if rep is not None and rep <= 0:
        raise InvalidRequest("`repetition_penalty` must be strictly positive")
    if max_new is not None and max_new <= 0:
        raise InvalidRequest("`max_new_tokens` must be strictly positive")
    if seed is not None and seed < 0:
        raise InvalidRequest("`seed` must be a non-negative integer")
    if best_of is not None and best_of != 1:
        raise InvalidRequest("`best_of` > 1 is not supported by this server")
    if truncate is not None and not 0 < truncate <= limits.max_input_tokens:
        raise InvalidRequest(
            f"`truncate` must be strictly positive and less than {limits.max_input_tokens}. Given: {truncate}"
        )
    stop = params.get("stop") or []
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise InvalidRequest("`stop` must be a list of strings")
    if len(stop) > limits.max_stop_sequences:
        raise InvalidRequest(f"`stop` supports up to {limits.max_stop_sequences} stop sequences. Given: {len(stop)}")
    adapter = params.get("adapter_id")
    if adapter is not None and not isinstance(adapter, str):
        raise InvalidRequest("`adapter_id` must be a string")
    sampling = bool(params.get("do_sample")) or (
        (temperature is not None and temperature != 1.0) or top_k is not None or (top_p is not None and top_p < 1)
    )
    generation = GenerationParams(
        max_new_tokens=min(max_new or DEFAULT_MAX_NEW_TOKENS, 32768),
        do_sample=sampling,
        temperature=temperature or 1.0,
        top_p=top_p,
        top_k=top_k,
        repetition_penalty=rep,
        seed=seed,
    )
    full_text = params.get("return_full_text")
    return GenerateRequest(
        inputs=inputs,
        params=generation,
        max_new_tokens_given=max_new is not None,
        adapter_id=adapter,
        details=bool(params.get("details", False)),
        return_full_text=full_text_default if full_text is None else bool(full_text),
        truncate=truncate,
        stop=tuple(stop),
    )


def check_lengths(input_tokens: int, max_new_tokens: int, limits: Limits) -> None:
    """TGI's token-count rules for a tokenized input."""
    if input_tokens > limits.max_input_tokens:
        raise InvalidRequest(f"`inputs` must have less than {limits.max_input_tokens} tokens. Given: {input_tokens}")
    if input_tokens + max_new_tokens > limits.max_total_tokens:
        raise InvalidRequest(
            f"`inputs` tokens + `max_new_tokens` must be <= {limits.max_total_tokens}. "
            f"Given: {input_tokens} `inputs` tokens and {max_new_tokens} `max_new_tokens`"
        )


def sse(payload: Any) -> bytes:
    """One server-sent event, framed exactly as TGI frames it (`data: ` with a space)."""
    text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return f"data: {text}\n\n".encode()


KEEP_ALIVE = b":\n\n"


def token_json(token_id: int, text: str, logprob: float, special: bool) -> dict[str, Any]:
    """A token object as TGI sends it."""
    return {"id": token_id, "text": text, "logprob": logprob, "special": special}


def details_json(
    finish_reason: str, generated: int, seed: int | None, input_length: int, tokens: list[dict[str, Any]] | None
) -> dict[str, Any]:
    """The `details` object (streamed: no token list; non-streamed: with it)."""
    out: dict[str, Any] = {
        "finish_reason": finish_reason,
        "generated_tokens": generated,
        "seed": seed,
        "input_length": input_length,
    }
    if tokens is not None:
        out.update(prefill=[], tokens=tokens, top_tokens=None, best_of_sequences=None)
    return out


def chat_finish_reason(finish_reason: str) -> str:
    """OpenAI's finish reason for TGI's."""
    return "length" if finish_reason == "length" else "stop"
