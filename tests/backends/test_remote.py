"""The tgi and openai backends over loopback HTTP: streaming, failover, health, timeouts and every fault."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator

import pytest

from backends import base
from backends.base import Chunk, GenerationParams, Message
from backends.health import HealthMonitor
from backends.openai import OpenAIBackend
from backends.remote import ActivityBoard, RemoteBackend, RemoteTimeouts
from backends.tgi import TgiBackend
from tests.support.faults import FaultServer
from tests.support.helpers import Process, free_port

ASK = [Message(role="user", content="Bonjour !")]
PARAMS = GenerationParams(max_new_tokens=12, seed=5, temperature=0.8)
FAST = RemoteTimeouts(connect=2, first_token=1.5, between_tokens=1.0)


@pytest.fixture
def fault() -> Iterator[FaultServer]:
    server = FaultServer().start()
    yield server
    server.stop()


def tgi(*urls: str, adapter: str | None = None, timeouts: RemoteTimeouts = FAST, key: str | None = None) -> TgiBackend:
    return TgiBackend(name="t", urls=list(urls), template="chatml", adapter_id=adapter, timeouts=timeouts, api_key=key)


async def collect(backend: RemoteBackend, params: GenerationParams = PARAMS) -> list[Chunk]:
    return [c async for c in backend.stream(ASK, params)]


def text(chunks: list[Chunk]) -> str:
    return "".join(c.text for c in chunks)


def test_tgi_streams_with_adapters_and_seed(serve: Process) -> None:
    base = text(asyncio.run(collect(tgi(serve.url))))
    a = text(asyncio.run(collect(tgi(serve.url, adapter="lora-a"))))
    assert base and a and base != a
    assert text(asyncio.run(collect(tgi(serve.url, adapter="lora-a")))) == a


def test_tgi_strips_the_templates_stop_string(serve: Process) -> None:
    chunks = asyncio.run(collect(tgi(serve.url), GenerationParams(max_new_tokens=400, seed=1)))
    assert "<|im_end|>" not in text(chunks) and "<|im_start|>" not in text(chunks)


def test_tgi_server_chat_template_mode(serve: Process) -> None:
    backend = TgiBackend(
        name="t", urls=[serve.url], template="tokenizer", adapter_id="lora-b", server_chat_template=True
    )
    assert text(asyncio.run(collect(backend)))


def test_openai_backend_streams(serve: Process) -> None:
    backend = OpenAIBackend(name="o", urls=[serve.url], model="lora-b", timeouts=FAST)
    first = text(asyncio.run(collect(backend)))
    assert first and first == text(asyncio.run(collect(backend)))


@pytest.mark.parametrize("kind", ["tgi", "tgi-chat", "openai"])
def test_do_sample_false_is_greedy_on_every_route(serve: Process, kind: str) -> None:
    """`do_sample: false` decodes greedily: other seeds, the same answer (sampling with them differs)."""
    make: Callable[[], RemoteBackend] = {
        "tgi": lambda: tgi(serve.url),
        "tgi-chat": lambda: TgiBackend(
            name="t", urls=[serve.url], template="tokenizer", server_chat_template=True, timeouts=FAST
        ),
        "openai": lambda: OpenAIBackend(name="o", urls=[serve.url], model="lora-a", timeouts=FAST),
    }[kind]

    def answer(seed: int, do_sample: bool) -> str:  # a backend per event loop, as the app has one loop
        params = GenerationParams(max_new_tokens=10, seed=seed, temperature=1.5, top_k=40, do_sample=do_sample)
        return text(asyncio.run(collect(make(), params)))

    assert answer(1, False) == answer(2, False)
    assert len({answer(seed, True) for seed in (1, 2, 3)}) > 1


def test_port_closed_is_unavailable_and_marks_the_replica(free: None = None) -> None:
    backend = tgi(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(base.BackendUnavailable) as err:
        asyncio.run(collect(backend))
    assert err.value.user_message == "The model is not reachable right now. Please try again later."
    assert not backend.available


def test_failover_to_the_next_replica_before_the_first_token(serve: Process) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    backend = tgi(dead, serve.url)
    assert text(asyncio.run(collect(backend)))
    assert [e.healthy for e in backend.replicas.endpoints] == [False, True]


def test_overload_fails_over_once_then_gives_up(fault: FaultServer, serve: Process) -> None:
    fault.mode = "overloaded_event"
    assert text(asyncio.run(collect(tgi(fault.url, serve.url))))
    other = FaultServer(mode="http429").start()
    try:
        with pytest.raises(base.BackendOverloaded) as err:
            asyncio.run(collect(tgi(fault.url, other.url)))
        assert err.value.user_message == "The model is busy right now. Please try again in a moment."
    finally:
        other.stop()


def test_hang_before_the_first_token_times_out(fault: FaultServer) -> None:
    fault.mode = "hang"
    with pytest.raises(base.BackendTimeout):
        asyncio.run(collect(tgi(fault.url)))


@pytest.mark.parametrize(
    ("mode", "error"), [("stall_mid_stream", base.BackendTimeout), ("die_mid_stream", base.GenerationFailed)]
)
def test_failure_after_text_was_shown_is_not_retried(
    fault: FaultServer, serve: Process, mode: str, error: type[Exception]
) -> None:
    fault.mode = mode
    seen: list[str] = []

    async def run() -> None:
        async for chunk in tgi(fault.url, serve.url).stream(ASK, PARAMS):
            seen.append(chunk.text)

    with pytest.raises(error):
        asyncio.run(run())
    assert seen == ["Hi", "Hi"]  # the healthy replica is not tried once tokens were shown


def test_malformed_sse_is_a_generation_failure(fault: FaultServer) -> None:
    fault.mode = "malformed"
    with pytest.raises(base.GenerationFailed):
        asyncio.run(collect(tgi(fault.url)))


def test_too_long_prompt_tells_the_user(tight_serve: Process, fault: FaultServer) -> None:
    long_chat = [Message(role="user", content="mot " * 300)]
    with pytest.raises(base.InputTooLong) as err:
        asyncio.run(_collect_messages(tgi(tight_serve.url), long_chat))
    assert err.value.user_message == "The conversation is too long for this model. Please start a new round."
    fault.mode = "validation"
    with pytest.raises(base.InputTooLong):
        asyncio.run(collect(tgi(fault.url)))


async def _collect_messages(backend: RemoteBackend, messages: list[Message]) -> list[Chunk]:
    return [c async for c in backend.stream(messages, PARAMS)]


@pytest.mark.parametrize("kind", ["tgi", "openai"])  # tgi probes /health, openai /v1/models
def test_health_exclusion_and_return(fault: FaultServer, kind: str) -> None:
    backend = tgi(fault.url) if kind == "tgi" else OpenAIBackend(name="o", urls=[fault.url], model="m", timeouts=FAST)
    monitor = HealthMonitor([backend], interval=60, timeout=2)
    fault.health_status = 503
    monitor.check_now()
    assert not backend.available
    fault.health_status = 200
    monitor.check_now()
    assert backend.available


def test_missing_adapter_is_found_at_start_up(serve: Process) -> None:
    backend = tgi(serve.url, adapter="ghost")
    HealthMonitor([backend], interval=60).check_now()
    assert not backend.available
    assert backend.problem is not None and "does not serve adapter 'ghost'" in backend.problem
    good = tgi(serve.url, adapter="lora-a")
    HealthMonitor([good], interval=60).check_now()
    assert good.available and good.problem is None


def test_the_machines_hf_token_is_never_sent(fault: FaultServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_LOCALSECRETTOKEN")
    asyncio.run(collect(tgi(fault.url)))
    with contextlib.suppress(base.GenerationFailed):  # the fault server streams TGI events; only headers matter here
        asyncio.run(collect(OpenAIBackend(name="o", urls=[fault.url], model="m", timeouts=FAST)))
    HealthMonitor([tgi(fault.url)], interval=60).check_now()
    assert fault.seen_headers and all("hf_LOCAL" not in str(h) for h in fault.seen_headers)
    fault.seen_headers.clear()
    asyncio.run(collect(tgi(fault.url, key="sk-configured")))
    assert fault.seen_headers[-1]["authorization"] == "Bearer sk-configured"


def test_a_server_counts_as_busy_near_a_stream_of_ours() -> None:
    now = [100.0]
    board = ActivityBoard(clock=lambda: now[0])
    server = board.of("http://127.0.0.1:9")
    assert board.of("http://127.0.0.1:9") is server and board.of("http://127.0.0.1:10") is not server
    assert not server.busy(60)
    server.began()
    assert server.busy(60)
    now[0] += 300
    assert server.busy(60)  # still streaming
    server.ended(ok=False)
    assert not server.busy(60)  # it began long ago and failed
    server.began()
    now[0] += 61
    server.ended(ok=False)  # cancelled by the user: the server may still be generating it
    assert not server.busy(60)  # ... but it began more than a minute ago
    server.began()
    now[0] += 120
    server.ended(ok=True)
    assert server.busy(60)  # a good answer just ended
    now[0] += 61
    assert not server.busy(60)
