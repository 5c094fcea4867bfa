"""The batched Decoder against its one-request-per-forward reference (max_batch=1), on real transformers + peft models.

Batched rows see left padding and different matrix shapes, so logits differ from the reference in the last bits:
token ids and finish reasons must match exactly, log-probabilities to 1e-4.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM

from backends.base import GenerationParams
from backends.decoder import Decoder, DecodeRequest, StepEvent
from backends.demo import DemoModels

WAIT = 120.0


@dataclass(frozen=True)
class Job:
    """One request to run: prompt, adapter, sampling, and which ids end it."""

    prompt: list[int]
    adapter: str | None
    params: GenerationParams
    eos: frozenset[int] = frozenset()


@dataclass
class Stream:
    """A sink that records every event; `on_token(request, n)` runs (on the decoder thread) after token n."""

    on_token: Callable[[DecodeRequest, int], None] | None = None
    events: list[StepEvent] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    request: DecodeRequest | None = None

    def __call__(self, ev: StepEvent) -> None:
        self.events.append(ev)
        if ev.token_id is not None and self.on_token is not None and self.request is not None:
            self.on_token(self.request, len(self.tokens))
        if ev.finish_reason is not None or ev.error is not None:
            self.done.set()

    @property
    def tokens(self) -> list[int]:
        return [e.token_id for e in self.events if e.token_id is not None]

    @property
    def end(self) -> StepEvent:
        return self.events[-1]


def submit(decoder: Decoder, job: Job, on_token: Callable[[DecodeRequest, int], None] | None = None) -> Stream:
    stream = Stream(on_token)
    stream.request = DecodeRequest(job.prompt, job.adapter, job.params, job.eos, stream)
    decoder.submit(stream.request)
    return stream


def wait(streams: Sequence[Stream]) -> None:
    for s in streams:
        assert s.done.wait(WAIT), "a request never finished"


def together(
    decoder: Decoder,
    jobs: Sequence[Job],
    hooks: dict[int, Callable[[DecodeRequest, int], None]] | None = None,
    *,
    abandoned: int | None = None,
) -> list[Stream]:
    """Submit every job while the decoder thread is held, so all of them start in the same step; wait for them
    (except the `abandoned` one: its consumer is gone, nobody hears its end). `hooks[i]` watches job i's tokens."""
    gate = threading.Event()
    held = decoder.call(lambda _model: gate.wait(WAIT))
    streams = [submit(decoder, job, (hooks or {}).get(i)) for i, job in enumerate(jobs)]
    gate.set()
    held.result(WAIT)
    wait([s for i, s in enumerate(streams) if i != abandoned])
    return streams


def reference(model: Any, jobs: Sequence[Job]) -> list[Stream]:
    """Each job alone, one request per forward pass."""
    decoder = Decoder(model, name="reference", max_batch=1)
    try:
        streams = []
        for job in jobs:
            streams.append(submit(decoder, job))
            wait(streams[-1:])
        return streams
    finally:
        decoder.close()


def assert_same(got: Stream, want: Stream) -> None:
    assert got.tokens == want.tokens
    assert got.end.finish_reason == want.end.finish_reason
    assert [e.logprob for e in got.events] == pytest.approx([e.logprob for e in want.events], abs=1e-4)


@pytest.fixture(scope="module")
def lora_model(demo_models: DemoModels) -> Any:
    """The demo base with both demo adapters attached as 'a' and 'b'."""
    base = AutoModelForCausalLM.from_pretrained(demo_models.base)
    model = PeftModel.from_pretrained(base, str(demo_models.adapters["lora-a"]), adapter_name="a")
    model.load_adapter(str(demo_models.adapters["lora-b"]), adapter_name="b")
    return model.eval()


@pytest.fixture
def batched(lora_model: Any) -> Iterator[Decoder]:
    decoder = Decoder(lora_model, name="batched")
    yield decoder
    decoder.close()


def mixed_jobs(n: int, eos: int, *, seed: int = 0) -> list[Job]:
    """Base and both adapters, prompts of 2 to 40 tokens, sampling (some with top_k / repetition penalty) and greedy."""
    rng = random.Random(seed)
    jobs = []
    for i in range(n):
        params = GenerationParams(
            max_new_tokens=rng.randint(12, 40),
            do_sample=i % 3 != 2,
            temperature=rng.choice([0.7, 1.0, 1.3]),
            top_p=rng.choice([None, 0.9]),
            top_k=rng.choice([None, 50]),
            repetition_penalty=rng.choice([None, 1.2]),
            seed=100 + i,
        )
        prompt = [rng.randrange(3, 600) for _ in range(rng.randint(2, 40))]
        jobs.append(Job(prompt, [None, "a", "b"][i % 3], params, frozenset({eos}) if i % 2 else frozenset()))
    return jobs


@pytest.mark.parametrize("max_batch", [None, 3])
def test_a_batch_of_mixed_adapters_equals_one_request_per_forward(lora_model: Any, max_batch: int | None) -> None:
    jobs = mixed_jobs(7, lora_model.config.eos_token_id)
    forwards: list[int] = []
    handle = lora_model.get_input_embeddings().register_forward_hook(lambda _m, args, _o: forwards.append(len(args[0])))
    decoder = Decoder(lora_model, name="batched", max_batch=max_batch)
    try:
        got = together(decoder, jobs)
    finally:
        decoder.close()
        handle.remove()
    for g, w in zip(got, reference(lora_model, jobs), strict=True):
        assert_same(g, w)
    steps = max(len(s.tokens) for s in got) - 1
    assert forwards[:7] == [1] * 7  # each prompt is prefilled alone
    if max_batch is None:  # then one forward per step over every row still running
        assert forwards[7] == 7 and len(forwards) == 7 + steps
    else:  # then batches of 3, 3 and 1 rows
        assert forwards[7:10] == [3, 3, 1] and max(forwards) == 3


def test_requests_join_midway_and_a_cancelled_one_leaves(lora_model: Any, batched: Decoder) -> None:
    jobs = mixed_jobs(6, lora_model.config.eos_token_id, seed=1)
    first, late = jobs[:3], jobs[3:]
    streams: list[Stream] = []

    def on_first(_req: DecodeRequest, n: int) -> None:
        joining = {3: late[:1], 7: late[1:]}.get(n, [])  # after the 3rd token of the first request, then the 7th
        streams.extend(submit(batched, job) for job in joining)

    def cancel(req: DecodeRequest, n: int) -> None:
        if n == 5:
            req.cancelled.set()

    long_first = Job(first[0].prompt, first[0].adapter, first[0].params.model_copy(update={"max_new_tokens": 40}))
    started = together(batched, [long_first, *first[1:]], {0: on_first, 1: cancel})
    wait(streams)
    want = reference(lora_model, [long_first, *first[1:], *late])
    for g, w in zip([started[0], started[2], *streams], [want[0], want[2], *want[3:]], strict=True):
        assert_same(g, w)
    cancelled = started[1]
    assert cancelled.end.finish_reason == "cancelled"
    assert cancelled.tokens == want[1].tokens[: len(cancelled.tokens)] and len(cancelled.tokens) == 5


def test_a_failing_row_fails_alone(lora_model: Any, batched: Decoder) -> None:
    jobs = mixed_jobs(4, lora_model.config.eos_token_id, seed=2)
    jobs = [Job(j.prompt, j.adapter, j.params.model_copy(update={"max_new_tokens": 30})) for j in jobs]
    broken = GenerationParams.model_construct(**{**jobs[1].params.model_dump(), "top_k": 0})  # topk(…, 0) fails

    def break_sampling(req: DecodeRequest, n: int) -> None:
        if n == 6:
            req.params = broken  # its next step fails while the other rows are in the same forward pass

    unknown = Job([5, 6, 7], "no-such-adapter", jobs[0].params)
    out_of_vocab = Job([5, 100_000], None, jobs[0].params)  # the embedding lookup fails in its prefill
    got = together(batched, [*jobs, unknown, out_of_vocab], {1: break_sampling})
    want = reference(lora_model, jobs)
    for i in (0, 2, 3):
        assert_same(got[i], want[i])
    assert got[1].end.error is not None and got[1].tokens == want[1].tokens[:6]
    assert isinstance(got[4].end.error, LookupError) and not got[4].tokens
    assert got[5].end.error is not None and not got[5].tokens
    assert_same(together(batched, jobs[:1])[0], want[0])  # the decoder keeps working


def test_a_consumer_that_leaves_cancels_only_its_request(lora_model: Any, batched: Decoder) -> None:
    jobs = mixed_jobs(3, lora_model.config.eos_token_id, seed=3)
    jobs = [Job(j.prompt, j.adapter, j.params.model_copy(update={"max_new_tokens": 25})) for j in jobs]

    def gone(_req: DecodeRequest, n: int) -> None:
        if n == 4:
            raise RuntimeError("the consumer's event loop is closed")

    got = together(batched, jobs, {0: gone}, abandoned=0)
    want = reference(lora_model, jobs)
    assert got[0].request is not None and got[0].request.cancelled.is_set()
    assert got[0].tokens == want[0].tokens[:4]
    assert_same(got[1], want[1])
    assert_same(got[2], want[2])


def test_a_request_cancelled_while_waiting_for_a_slot_ends_at_once(lora_model: Any) -> None:
    decoder = Decoder(lora_model, name="full", max_active=1)
    try:
        gate = threading.Event()
        held = decoder.call(lambda _model: gate.wait(WAIT))
        running = submit(decoder, Job([5, 6, 7], None, GenerationParams(max_new_tokens=500, seed=1)))
        queued = submit(decoder, Job([8, 9], "a", GenerationParams(max_new_tokens=5, seed=2)))
        assert queued.request is not None and running.request is not None
        queued.request.cancelled.set()
        gate.set()
        held.result(WAIT)
        wait([queued])
        assert queued.events == [StepEvent(finish_reason="cancelled")] and not running.done.is_set()
        running.request.cancelled.set()
        wait([running])
        assert running.end.finish_reason == "cancelled"
    finally:
        decoder.close()


def test_the_reference_equals_transformers_generate(lora_model: Any) -> None:
    prompt = [5, 17, 230, 41, 9]
    greedy = GenerationParams(max_new_tokens=20, do_sample=False)
    jobs = [Job(prompt, None, greedy), Job(prompt, "b", greedy)]
    got = reference(lora_model, jobs)
    ids = torch.tensor([prompt])
    common = {"max_new_tokens": 20, "do_sample": False, "eos_token_id": None, "pad_token_id": 0}
    with torch.inference_mode():
        with lora_model.disable_adapter():
            base = lora_model.generate(input_ids=ids, **common)[0, len(prompt) :].tolist()
        lora_model.set_adapter("b")
        adapted = lora_model.generate(input_ids=ids, **common)[0, len(prompt) :].tolist()
    assert got[0].tokens == base and got[1].tokens == adapted != base


def test_call_attaches_adapters_while_a_request_runs(demo_models: DemoModels) -> None:
    plain = AutoModelForCausalLM.from_pretrained(demo_models.base)
    long_base = Job([5, 6, 7, 8], None, GenerationParams(max_new_tokens=120, seed=1))
    on_a = Job([9, 10, 11], "a", GenerationParams(max_new_tokens=30, seed=2))
    on_b = Job([12, 13], "b", GenerationParams(max_new_tokens=30, do_sample=False))
    decoder = Decoder(plain, name="attach")
    late: list[Stream] = []
    attached: list[Future[Any]] = []
    base_progress: list[int] = []

    path_a = str(demo_models.adapters["lora-a"])

    def attach(_req: DecodeRequest, n: int) -> None:
        if n == 10:  # the first: wrap the plain model; the second: add to the PeftModel (not adopted: not a model)
            first = decoder.call(lambda m: PeftModel.from_pretrained(m, path_a, adapter_name="a"))
            first.add_done_callback(lambda _f: late.append(submit(decoder, on_a, note)))
            attached.append(first)
        if n == 20:
            path = str(demo_models.adapters["lora-b"])
            second = decoder.call(lambda m: m.load_adapter(path, adapter_name="b"))
            second.add_done_callback(lambda _f: late.append(submit(decoder, on_b, note)))
            attached.append(second)

    def note(_req: DecodeRequest, _n: int) -> None:
        base_progress.append(len(running.tokens))

    try:
        running = submit(decoder, long_base, attach)
        wait([running])
        wait(late)
        assert isinstance(attached[0].result(WAIT), PeftModel) and attached[1].result(WAIT) is not None
    finally:
        decoder.close()
    assert min(base_progress) == 10 and max(base_progress) < 120  # the adapter requests ran beside the base one

    fresh = AutoModelForCausalLM.from_pretrained(demo_models.base)
    [want_base] = reference(fresh, [long_base])
    adapted = PeftModel.from_pretrained(fresh, str(demo_models.adapters["lora-a"]), adapter_name="a")
    adapted.load_adapter(str(demo_models.adapters["lora-b"]), adapter_name="b")
    want_a, want_b = reference(adapted, [on_a, on_b])
    assert_same(running, want_base)
    assert_same(late[0], want_a)
    assert_same(late[1], want_b)
    assert want_a.tokens != reference(adapted, [Job(on_a.prompt, None, on_a.params)])[0].tokens


def test_call_reports_failures_and_refuses_after_close(lora_model: Any) -> None:
    decoder = Decoder(lora_model, name="calls")
    try:
        assert decoder.call(lambda m: type(m).__name__).result(WAIT) == "PeftModelForCausalLM"
        with pytest.raises(ZeroDivisionError):
            decoder.call(lambda _m: 1 / 0).result(WAIT)
        job = mixed_jobs(1, lora_model.config.eos_token_id)[0]
        assert together(decoder, [job])[0].end.finish_reason in ("length", "eos_token")
    finally:
        decoder.close()
    with pytest.raises(RuntimeError, match="closed"):
        decoder.call(lambda m: m).result(WAIT)


def test_real_model_base_and_adapter_batched_equal_alone(smollm2: Path, tmp_path: Path) -> None:
    fresh = AutoModelForCausalLM.from_pretrained(smollm2, dtype=torch.float32)
    linear = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    torch.manual_seed(0)
    get_peft_model(fresh, LoraConfig(r=8, target_modules=linear, init_lora_weights=False)).save_pretrained(
        str(tmp_path / "lora")
    )
    base = AutoModelForCausalLM.from_pretrained(smollm2, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, str(tmp_path / "lora"), adapter_name="lora")
    eos = frozenset({model.config.eos_token_id})
    prompt = [1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365]  # BOS + a few words
    jobs = [
        Job(prompt, None, GenerationParams(max_new_tokens=16, seed=3), eos),
        Job(prompt[:6], "lora", GenerationParams(max_new_tokens=16, do_sample=False), eos),
    ]
    decoder = Decoder(model, name="smollm2")
    try:
        got = together(decoder, jobs)
    finally:
        decoder.close()
    want = reference(model, jobs)
    assert got[0].tokens != got[1].tokens
    for g, w in zip(got, want, strict=True):
        assert_same(g, w)
