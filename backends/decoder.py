"""One worker thread owning one base model and its LoRA adapters, decoding every active request in one batch.

Why not `model.generate` per request: peft's active adapter is state on the shared modules, so two threads
generating with different adapters of one base would corrupt each other. One owner thread runs every forward pass.

Each step is ONE forward pass over all active rows, whatever adapter each row uses: peft's LoRA layers take
`adapter_names` (one name per row, `"__base__"` for the base model) and apply each adapter to its own rows. peft's
own route to that argument registers a hook on every module for every call; here one persistent pre-hook per LoRA
layer hands it the names of the forward that is running. On CPU a decode step is bound by reading the weights, so
two rows cost little more than one.

Continuous batching: a new request is prefilled alone (its own cache and adapter), gets its first token, then joins
the batch: caches are left-padded to a common length, a 2-D mask marks the real positions and each row's position
ids are its true length. Finished, cancelled or failed rows leave by index selection, and columns that are padding
in every row are trimmed. `max_batch=1` gives each request its own forward pass (the reference the tests compare to).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import torch

from backends.base import GenerationParams
from backends.batching import BASE, AdapterRouter, Batch

log = logging.getLogger(__name__)


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
    _generated: list[int] = field(default_factory=list)
    _generator: torch.Generator | None = None


NUCLEUS_CANDIDATES = 512  # top-p looks among this many most likely tokens first (then, if short, all of them)


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
        # The nucleus nearly always lies among the few most likely tokens: look there first (a full sort of a
        # 50k vocabulary costs more than the rest of sampling); the same tokens are kept either way.
        sorted_probs, order = torch.topk(probs, min(NUCLEUS_CANDIDATES, probs.numel()))
        if float(sorted_probs.sum()) < params.top_p:
            sorted_probs, order = torch.sort(probs, descending=True)
        keep = torch.cumsum(sorted_probs, dim=-1) - sorted_probs < params.top_p
        keep[0] = True
        mask = torch.zeros_like(probs, dtype=torch.bool)
        mask[order[keep]] = True
        probs = torch.where(mask, probs, torch.zeros_like(probs))
        probs = probs / probs.sum()
    token = int(torch.multinomial(probs, 1, generator=gen).item())
    return token, float(torch.log(probs[token]).item())


@dataclass
class _Call:
    fn: Callable[[Any], Any]
    future: Future[Any]


class Decoder:
    """Decodes up to `max_active` requests on one thread, `max_batch` rows per forward pass (default: all of them)."""

    def __init__(self, model: Any, *, name: str, max_active: int = 64, max_batch: int | None = None) -> None:
        if max_batch is not None and max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._model = model
        self._router = AdapterRouter()
        self._router.scan(model)
        self._extra = _last_logits_only(model)
        self._max_active = max_active
        self._max_batch = max_active if max_batch is None else max_batch
        self._incoming: queue.Queue[DecodeRequest | _Call | None] = queue.Queue()
        self._closed = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"decoder-{name}", daemon=True)
        self._thread.start()

    def submit(self, request: DecodeRequest) -> None:
        """Queue a request; its events arrive through its sink."""
        with self._lock:
            if not self._closed:
                self._incoming.put(request)
                return
        _emit(request, StepEvent(finish_reason="cancelled"))

    def call(self, fn: Callable[[Any], Any]) -> Future[Any]:
        """Run `fn(model)` on the decoder thread between steps; a `torch.nn.Module` it returns becomes the model.

        Running requests continue across the call (their caches stay valid as long as the base weights do);
        LoRA layers the call adds are hooked before the next step, so their adapters can be used at once.
        """
        future: Future[Any] = Future()
        with self._lock:
            if not self._closed:
                self._incoming.put(_Call(fn, future))
                return future
        future.set_exception(RuntimeError("the decoder is closed"))
        return future

    def close(self) -> None:
        """Stop the worker thread after the current step."""
        with self._lock:
            self._closed = True
            self._incoming.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        waiting: deque[DecodeRequest] = deque()
        batches: list[Batch] = []
        try:
            with torch.inference_mode():
                while self._receive(waiting, block=not batches and not waiting):
                    self._admit(waiting, batches)
                    for batch in batches:
                        self._step(batch)
                        # Small CPU tensors run without releasing the GIL; give it up once per step so the event
                        # loop thread (HTTP, SSE, new connections) is not starved while a model is generating.
                        time.sleep(0)
                    batches = [b for b in batches if b.rows]
        finally:
            self._shut_down(waiting, batches)

    def _receive(self, waiting: deque[DecodeRequest], *, block: bool) -> bool:
        """Take everything queued (blocking for one item when idle); run calls now. False means shut down."""
        while True:
            try:
                item = self._incoming.get(block=block)
            except queue.Empty:
                return True
            block = False
            if item is None:
                return False
            if isinstance(item, _Call):
                self._run_call(item)
            else:
                waiting.append(item)

    def _run_call(self, call: _Call) -> None:
        if not call.future.set_running_or_notify_cancel():
            return
        try:
            with torch.inference_mode(False):  # what it loads (adapter weights) stays usable outside the decoder
                result = call.fn(self._model)
        except BaseException as exc:
            call.future.set_exception(exc)
            result = None
        if isinstance(result, torch.nn.Module):
            result.eval()
            self._model = result
            self._extra = _last_logits_only(result)
        try:
            self._router.scan(self._model)  # also after a failed call, which may have changed some layers
        except Exception as exc:
            log.exception("scanning the model for LoRA layers failed")
            if not call.future.done():
                call.future.set_exception(exc)
        if not call.future.done():
            call.future.set_result(result)

    def _admit(self, waiting: deque[DecodeRequest], batches: list[Batch]) -> None:
        """Prefill waiting requests while there is room, and place each one that continues in a batch."""
        for req in [r for r in waiting if r.cancelled.is_set()]:  # a full decoder still ends cancelled requests
            waiting.remove(req)
            _emit(req, StepEvent(finish_reason="cancelled"))
        while waiting and sum(len(b.rows) for b in batches) < self._max_active:
            req = waiting.popleft()
            started = self._prefill(req)
            time.sleep(0)
            if started is None:
                continue
            cache, length = started
            room = next((b for b in batches if len(b.rows) < self._max_batch), None)
            if room is None:
                batches.append(Batch(req, cache, length))
            else:
                room.add(req, cache, length)

    def _prefill(self, req: DecodeRequest) -> tuple[Any, int] | None:
        """Run the prompt alone and deliver the first token; the cache and its length if the request continues."""
        if req.cancelled.is_set():
            _emit(req, StepEvent(finish_reason="cancelled"))
            return None
        try:
            from transformers import DynamicCache

            if req.adapter is not None and req.adapter not in self._router.adapters:
                raise LookupError(f"adapter {req.adapter!r} is not loaded on this model")
            req._generator = torch.Generator()
            if req.params.seed is not None:
                req._generator.manual_seed(req.params.seed)
            else:
                req._generator.seed()
            cache = DynamicCache()
            ids = torch.tensor([req.prompt_ids], dtype=torch.long)
            logits = self._forward([req.adapter or BASE], input_ids=ids, past_key_values=cache)
            token, logprob = sample_next(logits[0, -1], req.params, req.prompt_ids, req._generator)
        except Exception as exc:  # a failure of one request must not stop the others
            log.exception("prefill failed")
            _emit(req, StepEvent(error=exc))
            return None
        return None if _deliver(req, token, logprob) else (cache, len(req.prompt_ids))

    def _step(self, batch: Batch) -> None:
        """Advance every row of `batch` by one token with one forward pass; finished rows leave the batch."""
        live = []
        for i, req in enumerate(batch.rows):
            if req.cancelled.is_set():
                _emit(req, StepEvent(finish_reason="cancelled"))
            else:
                live.append(i)
        if len(live) < len(batch.rows):
            batch.keep(live)
        if not batch.rows:
            return
        inputs = batch.inputs()
        try:
            logits = self._forward([req.adapter or BASE for req in batch.rows], **inputs)
        except Exception as exc:  # the shared cache is no longer consistent: every row of this batch fails
            log.exception("decode step failed")
            for req in batch.rows:
                _emit(req, StepEvent(error=exc))
            batch.keep([])
            return
        batch.advance(inputs["attention_mask"])
        live = []
        for i, req in enumerate(batch.rows):
            try:
                token, logprob = sample_next(
                    logits[i, -1], req.params, req.prompt_ids + req._generated, _generator(req)
                )
            except Exception as exc:  # sampling fails per row
                log.exception("sampling failed")
                _emit(req, StepEvent(error=exc))
                continue
            if not _deliver(req, token, logprob):
                live.append(i)
        if len(live) < len(batch.rows):
            batch.keep(live)

    def _forward(self, names: list[str], **inputs: Any) -> torch.Tensor:
        """One forward pass with `names[i]` as row i's adapter; the last position's logits."""
        self._router.names = names
        try:
            out = self._model(**inputs, use_cache=True, **self._extra)
        finally:
            self._router.names = None
        return out.logits  # type: ignore[no-any-return]

    def _shut_down(self, waiting: deque[DecodeRequest], batches: list[Batch]) -> None:
        with self._lock:
            self._closed = True
        leftovers: list[DecodeRequest | _Call | None] = []
        with contextlib.suppress(queue.Empty):
            while True:
                leftovers.append(self._incoming.get_nowait())
        for item in leftovers:
            if isinstance(item, _Call):
                item.future.set_exception(RuntimeError("the decoder is closed"))
            elif item is not None:
                waiting.append(item)
        for req in [*waiting, *(r for b in batches for r in b.rows)]:
            _emit(req, StepEvent(finish_reason="cancelled"))
        self._router.close()


def _last_logits_only(model: Any) -> dict[str, int]:
    """Forward kwargs that skip the logits of all but the last position (prompts are prefilled in one pass)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    supports = getattr(base, "_supports_logits_to_keep", None)
    return {"logits_to_keep": 1} if callable(supports) and supports() else {}


def _generator(req: DecodeRequest) -> torch.Generator:
    assert req._generator is not None  # seeded by the prefill
    return req._generator


def _deliver(req: DecodeRequest, token: int, logprob: float) -> bool:
    """Record and emit a sampled token (and the end, if it is one); True when the request is finished."""
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


def _emit(req: DecodeRequest, event: StepEvent) -> bool:
    """Deliver an event; a sink that fails (its consumer is gone) cancels that request only."""
    try:
        req.sink(event)
    except Exception:
        log.warning("dropping a request whose consumer is gone", exc_info=True)
        req.cancelled.set()
        return False
    return True
