"""What one `backends.serve` process hosts, and generation token by token as TGI's protocol reports it."""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import Any

from backends.base import GenerationParams
from backends.local import LocalBackend
from backends.streaming import IncrementalDecoder
from backends.tgi_protocol import GenerateRequest, InvalidRequest, Limits, Overloaded, check_lengths


@dataclass(frozen=True)
class Token:
    """One generated token as the protocol reports it."""

    id: int
    text: str
    logprob: float
    special: bool


@dataclass
class Finish:
    """How a generation ended."""

    reason: str = "length"
    generated: int = 0
    text: str = ""
    input_tokens: int = 0
    seed: int | None = None


@dataclass
class Metrics:
    """Counters behind /metrics, named as TGI names them."""

    requests: int = 0
    success: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    generated_tokens: int = 0
    input_tokens: int = 0
    duration: float = 0.0

    def render(self, inflight: int) -> str:
        """Prometheus text exposition."""
        lines = [
            "# TYPE tgi_request_count counter",
            f"tgi_request_count {self.requests}",
            "# TYPE tgi_request_success counter",
            f"tgi_request_success {self.success}",
            "# TYPE tgi_request_failure counter",
            *(f'tgi_request_failure{{err="{k}"}} {v}' for k, v in sorted(self.failures.items())),
            "# TYPE tgi_queue_size gauge",
            "tgi_queue_size 0",
            "# TYPE tgi_batch_current_size gauge",
            f"tgi_batch_current_size {inflight}",
            "# TYPE tgi_request_generated_tokens summary",
            f"tgi_request_generated_tokens_sum {self.generated_tokens}",
            f"tgi_request_generated_tokens_count {self.success}",
            "# TYPE tgi_request_input_length summary",
            f"tgi_request_input_length_sum {self.input_tokens}",
            f"tgi_request_input_length_count {self.success}",
            "# TYPE tgi_request_duration summary",
            f"tgi_request_duration_sum {self.duration:.6f}",
            f"tgi_request_duration_count {self.success}",
        ]
        return "\n".join(lines) + "\n"


@dataclass
class ServedModel:
    """What one server process hosts: a base model, its adapters, limits and live counters."""

    model_id: str
    base: LocalBackend
    adapters: dict[str, LocalBackend]
    template: str
    limits: Limits
    max_concurrent: int
    inflight: int = 0
    metrics: Metrics = field(default_factory=Metrics)

    def backend(self, adapter_id: str | None) -> LocalBackend:
        """The base model, or the named adapter (unknown names are a 422 here, on purpose)."""
        if adapter_id is None or adapter_id == self.model_id:
            return self.base
        if adapter_id not in self.adapters:
            loaded = ", ".join(sorted(self.adapters)) or "none"
            raise InvalidRequest(f"adapter `{adapter_id}` is not loaded (loaded adapters: {loaded})")
        return self.adapters[adapter_id]

    @contextlib.contextmanager
    def slot(self) -> Any:
        """Hold one of `max_concurrent` request slots; refuse at once when none is free (TGI does not queue)."""
        if self.inflight >= self.max_concurrent:
            raise Overloaded()
        self.inflight += 1
        try:
            yield
        finally:
            self.inflight -= 1


async def run_tokens(
    backend: LocalBackend, ids: list[int], params: GenerationParams, stops: Sequence[str], finish: Finish
) -> AsyncGenerator[Token, None]:
    """Generate token by token; stop strings end generation where a token ends and stay in the text."""
    tok = backend.tokenizer
    text = IncrementalDecoder(tok)
    events = backend.generate(ids, params)
    try:
        async for ev in events:
            if ev.token_id is None:
                finish.reason = ev.finish_reason or "length"
                return
            finish.generated += 1
            if ev.finish_reason == "eos_token":
                finish.reason = "eos_token"
                yield Token(ev.token_id, str(tok.decode([ev.token_id])), ev.logprob, True)
                return
            piece = text.add(ev.token_id)
            finish.text += piece
            yield Token(ev.token_id, piece, ev.logprob, False)
            if any(finish.text.endswith(s) for s in stops if s):
                finish.reason = "stop_sequence"
                return
            if ev.finish_reason is not None:
                finish.reason = ev.finish_reason
                return
    finally:
        await events.aclose()


def fit_to_context(served: ServedModel, req: GenerateRequest, input_tokens: int) -> GenerationParams:
    """The request's parameters with max_new_tokens filling the room left when not given (as TGI does),
    after TGI's length checks."""
    params = req.params
    if not req.max_new_tokens_given:
        room = served.limits.max_total_tokens - input_tokens
        params = params.model_copy(update={"max_new_tokens": max(1, min(params.max_new_tokens, room))})
    check_lengths(input_tokens, params.max_new_tokens, served.limits)
    return params


def prepare(served: ServedModel, req: GenerateRequest) -> tuple[LocalBackend, list[int], GenerationParams]:
    """The backend, the (truncated) input ids and the fitted parameters of a /generate-style request."""
    backend = served.backend(req.adapter_id)
    ids = backend.encode(req.inputs, add_special_tokens=True)  # raw inputs: the tokenizer adds BOS, as in TGI
    if req.truncate is not None:
        ids = ids[-req.truncate :]
    return backend, ids, fit_to_context(served, req, len(ids))


async def generated_tokens(served: ServedModel, req: GenerateRequest, finish: Finish) -> AsyncGenerator[Token, None]:
    """Hold a request slot, fit the request to the context and generate; `finish` records how it went."""
    with served.slot():
        backend, ids, params = prepare(served, req)
        finish.input_tokens, finish.seed = len(ids), params.seed
        async for token in run_tokens(backend, ids, params, req.stop, finish):
            yield token


def record_success(served: ServedModel, input_tokens: int, generated: int, started: float) -> None:
    """Count a finished request in /metrics."""
    m = served.metrics
    m.success += 1
    m.input_tokens += input_tokens
    m.generated_tokens += generated
    m.duration += time.perf_counter() - started
