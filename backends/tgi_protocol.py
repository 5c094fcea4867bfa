"""TGI's wire protocol as pure functions: request validation with TGI's messages, and the JSON shapes it sends."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
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


@dataclass(frozen=True)
class _Numbers:
    """The numeric parameters of a request, type-checked (None when absent)."""

    temperature: float | None
    top_p: float | None
    top_k: int | None
    typical_p: float | None
    repetition_penalty: float | None
    max_new_tokens: int | None
    seed: int | None
    truncate: int | None
    best_of: int | None

    @classmethod
    def of(cls, params: dict[str, Any]) -> _Numbers:
        """Read every numeric parameter with TGI's type errors."""
        floats = ("temperature", "top_p", "typical_p", "repetition_penalty")
        names = [f.name for f in fields(cls)]
        return cls(**{n: _number(params, n, float if n in floats else int) for n in names})


def _check_ranges(n: _Numbers, limits: Limits) -> None:
    """TGI's range checks, with its messages."""
    if n.temperature is not None and n.temperature <= 0:
        raise InvalidRequest("`temperature` must be strictly positive")
    if n.top_p is not None and not 0 < n.top_p < 1:
        raise InvalidRequest("`top_p` must be > 0.0 and < 1.0")
    if n.top_k is not None and n.top_k <= 0:
        raise InvalidRequest("`top_k` must be strictly positive")
    if n.typical_p is not None and not 0 < n.typical_p < 1:
        raise InvalidRequest("`typical_p` must be > 0.0 and < 1.0")
    if n.repetition_penalty is not None and n.repetition_penalty <= 0:
        raise InvalidRequest("`repetition_penalty` must be strictly positive")
    if n.max_new_tokens is not None and n.max_new_tokens <= 0:
        raise InvalidRequest("`max_new_tokens` must be strictly positive")
    if n.seed is not None and n.seed < 0:
        raise InvalidRequest("`seed` must be a non-negative integer")
    if n.best_of is not None and n.best_of != 1:
        raise InvalidRequest("`best_of` > 1 is not supported by this server")
    if n.truncate is not None and not 0 < n.truncate <= limits.max_input_tokens:
        raise InvalidRequest(
            f"`truncate` must be strictly positive and less than {limits.max_input_tokens}. Given: {n.truncate}"
        )


def _inputs_and_parameters(body: Any) -> tuple[str, dict[str, Any]]:
    """The `inputs` string and the `parameters` object of a body, or TGI's validation errors."""
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
    return inputs, params


def _stop_and_adapter(params: dict[str, Any], limits: Limits) -> tuple[list[str], str | None]:
    stop = params.get("stop") or []
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise InvalidRequest("`stop` must be a list of strings")
    if len(stop) > limits.max_stop_sequences:
        raise InvalidRequest(f"`stop` supports up to {limits.max_stop_sequences} stop sequences. Given: {len(stop)}")
    adapter = params.get("adapter_id")
    if adapter is not None and not isinstance(adapter, str):
        raise InvalidRequest("`adapter_id` must be a string")
    return stop, adapter


def _generation(n: _Numbers, do_sample: bool) -> GenerationParams:
    """The sampling parameters TGI would use: sampling is on when asked or implied by a sampling parameter."""
    sampling = do_sample or (
        (n.temperature is not None and n.temperature != 1.0)
        or n.top_k is not None
        or (n.top_p is not None and n.top_p < 1)
    )
    return GenerationParams(
        max_new_tokens=min(n.max_new_tokens or DEFAULT_MAX_NEW_TOKENS, 32768),
        do_sample=sampling,
        temperature=n.temperature or 1.0,
        top_p=n.top_p,
        top_k=n.top_k,
        repetition_penalty=n.repetition_penalty,
        seed=n.seed,
    )


def parse_generate(body: Any, limits: Limits, *, full_text_default: bool) -> GenerateRequest:
    """Validate a /generate, /generate_stream or / body the way TGI does."""
    inputs, params = _inputs_and_parameters(body)
    numbers = _Numbers.of(params)
    _check_ranges(numbers, limits)
    stop, adapter = _stop_and_adapter(params, limits)
    full_text = params.get("return_full_text")
    return GenerateRequest(
        inputs=inputs,
        params=_generation(numbers, bool(params.get("do_sample"))),
        max_new_tokens_given=numbers.max_new_tokens is not None,
        adapter_id=adapter,
        details=bool(params.get("details", False)),
        return_full_text=full_text_default if full_text is None else bool(full_text),
        truncate=numbers.truncate,
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
        # TGI leaves out `top_tokens` when empty and `best_of_sequences` without best_of: never a null array
        out.update(prefill=[], tokens=tokens)
    return out


def chat_finish_reason(finish_reason: str) -> str:
    """OpenAI's finish reason for TGI's."""
    return "length" if finish_reason == "length" else "stop"
