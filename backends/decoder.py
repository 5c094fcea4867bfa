"""One worker thread owning one base model and its LoRA adapters, interleaving decode steps of all requests.

Why not `model.generate` per request: peft's active adapter is state on the shared modules, so two threads
generating with different adapters of one base would corrupt each other. One owner thread that switches the
adapter before each step keeps requests independent, and interleaving steps lets both battle panes stream at
once (and lets a cancelled request free its slot at the next step).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from backends.base import GenerationParams

log = logging.getLogger(__name__)
_UNSET = "\x00unset"  # not a valid adapter name


@dataclass(frozen=True)
class StepEvent:
    """One decode outcome: a token, the end (with a finish reason), or a failure."""

    token_id: int | None = None
    logprob: float = 0.0
    finish_reason: str | None = None  # "eos_token", "length", "cancelled"
    error: BaseException | None = None


@dataclass
class DecodeRequest:
    """A prompt to continue; `sink` is called from the worker thread with each StepEvent."""

    prompt_ids: list[int]
    adapter: str | None
    params: GenerationParams
    eos_ids: frozenset[int]
    sink: Callable[[StepEvent], None]
    cancelled: threading.Event = field(default_factory=threading.Event)
    _cache: Any = None
    _generated: list[int] = field(default_factory=list)
    _generator: torch.Generator | None = None


def sample_next(
    logits: torch.Tensor, params: GenerationParams, history: list[int], gen: torch.Generator
) -> tuple[int, float]:
    """Pick the next token id (and its log-probability) from 1-D logits with TGI-style sampling parameters."""
    logits = logits.float()
    if params.repetition_penalty and params.repetition_penalty != 1.0 and history:
        seen = torch.tensor(sorted(set(history)), dtype=torch.long)
        picked = logits[seen]
        logits[seen] = torch.where(picked > 0, picked / params.repetition_penalty, picked * params.repetition_penalty)
    if not params.do_sample:
        logprobs = torch.log_softmax(logits, dim=-1)
        best = int(torch.argmax(logprobs).item())
        return best, float(logprobs[best].item())
    logits = logits / params.temperature
    if params.top_k is not None and params.top_k < logits.numel():
        kth = torch.topk(logits, params.top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    if params.top_p is not None and params.top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        keep = torch.cumsum(sorted_probs, dim=-1) - sorted_probs < params.top_p
        keep[0] = True
        mask = torch.zeros_like(probs, dtype=torch.bool)
        mask[order[keep]] = True
        probs = torch.where(mask, probs, torch.zeros_like(probs))
        probs = probs / probs.sum()
    token = int(torch.multinomial(probs, 1, generator=gen).item())
    return token, float(torch.log(probs[token]).item())


class Decoder:
    """Runs decode steps for every active request on one thread; at most `max_active` requests at once."""

    def __init__(self, model: Any, *, name: str, max_active: int = 64) -> None:
        from peft.tuners.tuners_utils import BaseTunerLayer

        self._model = model
        # Switching adapters through PeftModel (set_adapter / disable_adapter) walks the whole model and computes
        # its status on every call, holding the GIL long enough to starve the server's I/O thread; switching the
        # LoRA layers found once here costs a few microseconds per layer, and only when the adapter changes.
        self._lora_layers = [m for m in model.modules() if isinstance(m, BaseTunerLayer)]
        self._current: str | None = _UNSET  # what the layers are set to; unknown until the first switch
        self._max_active = max_active
        self._incoming: queue.Queue[DecodeRequest | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=f"decoder-{name}", daemon=True)
        self._thread.start()

    def submit(self, request: DecodeRequest) -> None:
        """Queue a request; its events arrive through its sink."""
        self._incoming.put(request)

    def close(self) -> None:
        """Stop the worker thread after the current step."""
        self._incoming.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        active: list[DecodeRequest] = []
        with torch.inference_mode():
            while True:
                if not self._admit(active):
                    for req in active:
                        _emit(req, StepEvent(finish_reason="cancelled"))
                    return
                for req in list(active):
                    if self._step(req):
                        active.remove(req)
                    # Small CPU tensors run without releasing the GIL; give it up once per step so the event
                    # loop thread (HTTP, SSE, new connections) is not starved while a model is generating.
                    time.sleep(0)

    def _admit(self, active: list[DecodeRequest]) -> bool:
        """Move waiting requests into `active`; block when idle. False means shut down."""
        while len(active) < self._max_active:
            try:
                item = self._incoming.get(block=not active)
            except queue.Empty:
                break
            if item is None:
                return False
            active.append(item)
        return True

    def _step(self, req: DecodeRequest) -> bool:
        """Advance one request by one token; True when it is finished."""
        if req.cancelled.is_set():
            _emit(req, StepEvent(finish_reason="cancelled"))
            return True
        try:
            token, logprob = self._next_token(req)
        except Exception as exc:  # a failure of one request must not stop the others
            log.exception("decode step failed")
            _emit(req, StepEvent(error=exc))
            return True
        req._generated.append(token)
        if token in req.eos_ids:
            _emit(req, StepEvent(token_id=token, logprob=logprob, finish_reason="eos_token"))
            return True
        if not _emit(req, StepEvent(token_id=token, logprob=logprob)):
            return True
        if len(req._generated) >= req.params.max_new_tokens:
            _emit(req, StepEvent(finish_reason="length"))
            return True
        return False

    def _next_token(self, req: DecodeRequest) -> tuple[int, float]:
        if req._cache is None:
            from transformers import DynamicCache

            req._cache = DynamicCache()
            input_ids = torch.tensor([req.prompt_ids], dtype=torch.long)
            req._generator = torch.Generator()
            if req.params.seed is not None:
                req._generator.manual_seed(req.params.seed)
            else:
                req._generator.seed()
        else:
            input_ids = torch.tensor([[req._generated[-1]]], dtype=torch.long)
        self._activate(req.adapter)
        out = self._model(input_ids=input_ids, past_key_values=req._cache, use_cache=True)
        req._cache = out.past_key_values
        assert req._generator is not None
        return sample_next(out.logits[0, -1], req.params, req.prompt_ids + req._generated, req._generator)

    def _activate(self, name: str | None) -> None:
        """Make `name` the active adapter of every LoRA layer (None: the base model alone)."""
        if not self._lora_layers or name == self._current:
            return
        for layer in self._lora_layers:
            if name is None:
                layer.enable_adapters(False)
                continue
            if layer.disable_adapters:
                layer.enable_adapters(True)
            layer.set_adapter(name, inference_mode=True)  # also freezes every adapter weight
        self._current = name


def _emit(req: DecodeRequest, event: StepEvent) -> bool:
    """Deliver an event; a sink that fails (its consumer is gone) cancels that request only."""
    try:
        req.sink(event)
    except Exception:
        log.warning("dropping a request whose consumer is gone", exc_info=True)
        req.cancelled.set()
        return False
    return True
