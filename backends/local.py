"""The `local` backend: transformers + peft in this process; LoRA variants of one base share its weights."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import prompts
from backends.base import (
    Chunk,
    GenerationFailed,
    GenerationParams,
    InputTooLong,
    Message,
)
from backends.decoder import Decoder, DecodeRequest, StepEvent
from backends.streaming import IncrementalDecoder, StopMatcher

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LocalSpec:
    """What the local backend needs to know about one model entry."""

    name: str
    model: str
    adapter: str | None = None
    template: str = prompts.TOKENIZER
    dtype: str = "float32"


class ModelLoadError(Exception):
    """A model or adapter could not be loaded; the message is one sentence naming it."""


@dataclass
class _Base:
    model: Any
    tokenizer: Any
    adapters: dict[str, str]  # adapter path -> adapter name inside the peft model
    decoder: Decoder | None = None


class LocalBackend:
    """Streams one model entry (a base, or a base + adapter) through its base model's Decoder."""

    def __init__(self, spec: LocalSpec, base: _Base, adapter_name: str | None, *, ready: bool = True) -> None:
        self.spec = spec
        self._base = base
        self._adapter = adapter_name
        self._ready = ready  # False for a variant whose adapter is still being built (LocalModelPool.attach)
        self._stops = prompts.stop_strings(spec.template)
        limit = getattr(base.model.config, "max_position_embeddings", None)
        self._max_total = int(limit) if limit else 2048

    def render(self, messages: Sequence[Message]) -> str:
        """The prompt string this model sees for `messages`."""
        if self.spec.template == prompts.TOKENIZER:
            return str(
                self._base.tokenizer.apply_chat_template(
                    [dict(m) for m in messages], tokenize=False, add_generation_prompt=True
                )
            )
        return prompts.render(self.spec.template, messages)

    @property
    def tokenizer(self) -> Any:
        """The tokenizer of this entry's base model."""
        return self._base.tokenizer

    @property
    def max_total_tokens(self) -> int:
        """Prompt plus generated tokens must fit in this many positions."""
        return self._max_total

    @property
    def available(self) -> bool:
        """A model in this process is available once its adapter (if any) is loaded."""
        return self._ready

    def _join(self, adapter_name: str) -> None:
        """The adapter is loaded into the running base: start answering with it."""
        self._adapter = adapter_name
        self._ready = True

    def encode(self, prompt: str, *, add_special_tokens: bool | None = None) -> list[int]:
        """Token ids of a prompt string.

        Corral's named templates leave BOS to the tokenizer (as TGI does for raw inputs), while a tokenizer's
        own chat template writes its special tokens itself; so by default special tokens are added for named
        templates only.
        """
        if add_special_tokens is None:
            add_special_tokens = self.spec.template != prompts.TOKENIZER
        return list(self._base.tokenizer(prompt, add_special_tokens=add_special_tokens)["input_ids"])

    async def generate(self, prompt_ids: list[int], params: GenerationParams) -> AsyncGenerator[StepEvent, None]:
        """Yield decoder events (tokens, then one with a finish reason); raise GenerationFailed on failure.

        Leaving early (break / aclose) cancels the request, which frees its decoder slot at the next step.
        """
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[StepEvent] = asyncio.Queue()
        eos = self._base.tokenizer.eos_token_id
        request = DecodeRequest(
            prompt_ids=prompt_ids,
            adapter=self._adapter,
            params=params,
            eos_ids=frozenset() if eos is None else frozenset({eos}),
            sink=lambda ev: _post(loop, events, ev),
        )
        assert self._base.decoder is not None
        self._base.decoder.submit(request)
        try:
            while True:
                ev = await events.get()
                if ev.error is not None:
                    raise GenerationFailed(repr(ev.error))
                yield ev
                # Queue.get() does not suspend while tokens are waiting: yield to the loop once per token so
                # one fast stream cannot starve other requests (or the accept of new connections).
                await asyncio.sleep(0)
                if ev.finish_reason is not None:
                    return
        finally:
            request.cancelled.set()

    async def stream(self, messages: Sequence[Message], params: GenerationParams) -> AsyncIterator[Chunk]:
        """Stream the reply; generation runs on the base model's decoder thread, never on the event loop."""
        try:
            prompt = self.render(messages)
        except prompts.PromptError as exc:
            raise GenerationFailed(str(exc)) from exc
        ids = self.encode(prompt)
        if len(ids) + params.max_new_tokens > self._max_total:
            raise InputTooLong(f"{len(ids)} prompt tokens + {params.max_new_tokens} > {self._max_total}")
        text = IncrementalDecoder(self._base.tokenizer)
        stops = StopMatcher([*self._stops, *params.stop])
        held = 0
        events = self.generate(ids, params)
        try:
            async for ev in events:
                if ev.token_id is None or ev.finish_reason == "eos_token":
                    break
                held += 1
                out = stops.feed(text.add(ev.token_id))
                if out:
                    yield Chunk(out, held)
                    held = 0
                if stops.stopped:
                    return
            tail = stops.flush()
            if tail or held:
                yield Chunk(tail, held)
        finally:
            await events.aclose()

    async def aclose(self) -> None:
        """Nothing per entry: the pool owns models and threads."""


def _check_template(spec: LocalSpec, tokenizer: Any) -> None:
    """A model without a chat template of its own (LLaMA-1 bases, merged LoRAs) needs a named one."""
    if spec.template == prompts.TOKENIZER and not getattr(tokenizer, "chat_template", None):
        raise ModelLoadError(
            f"Model '{spec.name}': '{spec.model}' has no chat template of its own; name its prompt format with "
            "`template:` (python -m prompts list)."
        )


class LocalModelPool:
    """Loads each base model once, attaches every adapter to it, and runs one Decoder per base."""

    def __init__(self, *, max_active_per_model: int = 64) -> None:
        self._bases: dict[tuple[str, str], _Base] = {}
        self._max_active = max_active_per_model

    def load(self, specs: Sequence[LocalSpec], *, later: Sequence[LocalSpec] = ()) -> dict[str, LocalBackend]:
        """Load all specs (bases first, then adapters) and return a backend per entry name.

        `later` entries get their base model now but their adapter only through `attach` (e.g. once it has been
        built); until then their backend is unavailable.
        """
        wiring: list[tuple[LocalSpec, _Base, str | None, bool]] = []
        for spec in specs:
            base = self._base(spec)
            _check_template(spec, base.tokenizer)
            wiring.append((spec, base, self._attach(base, spec) if spec.adapter else None, True))
        for spec in later:
            base = self._base(spec)
            _check_template(spec, base.tokenizer)
            wiring.append((spec, base, None, False))
        for (model_ref, _), base in self._bases.items():
            if base.decoder is None:
                base.model.eval()
                base.decoder = Decoder(base.model, name=Path(model_ref).name, max_active=self._max_active)
        return {spec.name: LocalBackend(spec, base, adapter, ready=ready) for spec, base, adapter, ready in wiring}

    def attach(self, backend: LocalBackend, *, timeout: float = 300) -> None:
        """Load a waiting entry's adapter into its running base model, then make the entry available.

        The adapter is loaded on the base's decoder thread between two decode steps, so requests already running
        on that base go on undisturbed (their base weights do not change).
        """
        spec, base = backend.spec, backend._base
        assert base.decoder is not None and spec.adapter is not None

        def load(_model: Any) -> Any:
            self._attach(base, spec)
            base.model.eval()
            return base.model

        base.decoder.call(load).result(timeout=timeout)
        backend._join(base.adapters[spec.adapter])

    def __len__(self) -> int:
        """How many base models are in memory (adapters of one base share it)."""
        return len(self._bases)

    def close(self) -> None:
        """Stop every decoder thread."""
        for base in self._bases.values():
            if base.decoder is not None:
                base.decoder.close()

    def _base(self, spec: LocalSpec) -> _Base:
        key = (spec.model, spec.dtype)
        if key not in self._bases:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            dtype = "auto" if spec.dtype == "auto" else getattr(torch, spec.dtype)
            try:
                tokenizer = AutoTokenizer.from_pretrained(spec.model)
                model = AutoModelForCausalLM.from_pretrained(spec.model, dtype=dtype)
            except Exception as exc:
                raise ModelLoadError(f"Model '{spec.name}': could not load '{spec.model}' ({exc}).") from exc
            self._bases[key] = _Base(model=model, tokenizer=tokenizer, adapters={})
        return self._bases[key]

    def _attach(self, base: _Base, spec: LocalSpec) -> str:
        assert spec.adapter is not None
        if spec.adapter in base.adapters:
            return base.adapters[spec.adapter]
        from peft import PeftModel

        name = f"a{len(base.adapters)}"
        try:
            if isinstance(base.model, PeftModel):
                base.model.load_adapter(spec.adapter, adapter_name=name)
            else:
                base.model = PeftModel.from_pretrained(base.model, spec.adapter, adapter_name=name)
        except Exception as exc:
            raise ModelLoadError(f"Model '{spec.name}': could not load adapter '{spec.adapter}' ({exc}).") from exc
        base.adapters[spec.adapter] = name
        return name


def _post(loop: asyncio.AbstractEventLoop, events: asyncio.Queue[StepEvent], ev: StepEvent) -> None:
    """Hand an event from the decoder thread to the stream's event loop (gone if the consumer left)."""
    with contextlib.suppress(RuntimeError):  # the loop was closed: nobody is listening any more
        loop.call_soon_threadsafe(events.put_nowait, ev)
