"""The `vllm` kind against real loopback servers: config, wiring, streaming, health and a missing served name."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from arena.config import ConfigError, parse_config
from arena.wiring import build_backends
from backends.base import BackendUnavailable, GenerationParams, Message
from backends.health import HealthMonitor
from backends.remote import RemoteTimeouts
from backends.vllm import VllmBackend, VllmModel
from tests.support.faults import FaultServer
from tests.support.helpers import Process, free_port

ASK = [Message(role="user", content="Bonjour !")]
PARAMS = GenerationParams(max_new_tokens=12, seed=5, temperature=0.8, top_k=20, repetition_penalty=1.1)
FAST = RemoteTimeouts(connect=2, first_token=1.5, between_tokens=1.0)


def vllm(*urls: str, model: str = "lora-b") -> VllmBackend:
    return VllmBackend(name="v", urls=list(urls), model=model, timeouts=FAST)


def answer(backend: VllmBackend) -> str:
    async def run() -> str:
        return "".join([c.text async for c in backend.stream(ASK, PARAMS)])

    return asyncio.run(run())


@pytest.fixture
def fault() -> Iterator[FaultServer]:
    server = FaultServer().start()
    yield server
    server.stop()


def test_a_vllm_entry_is_wired_to_a_vllm_backend(serve: Process) -> None:
    entry = {"name": "via-vllm", "backend": "vllm", "endpoints": [serve.url], "model": "lora-b"}
    config = parse_config({"models": [entry]}, source=Path("x.yaml"))
    assert isinstance(config.models[0], VllmModel)
    wired = build_backends(config, {})
    try:
        backend = wired.backends["via-vllm"]
        assert isinstance(backend, VllmBackend) and wired.remote == [backend]
    finally:
        wired.close()


def test_vllm_needs_the_served_model_name() -> None:
    with pytest.raises(ConfigError, match=r"models\[0\]\.model: Field required"):
        parse_config({"models": [{"name": "v", "backend": "vllm", "endpoints": ["http://h:1"]}]}, source=Path("x"))


def test_vllm_streams_with_vllms_extra_sampling_parameters(serve: Process) -> None:
    first = answer(vllm(serve.url))
    assert first and first == answer(vllm(serve.url))  # seeded: the same answer twice
    assert answer(vllm(serve.url, model="lora-a")) != first


def test_health_is_vllms_health_route(fault: FaultServer, serve: Process) -> None:
    down = vllm(f"http://127.0.0.1:{free_port()}")
    HealthMonitor([down], interval=60, timeout=2).check_now()
    assert not down.available
    with pytest.raises(BackendUnavailable):
        answer(down)
    backend = vllm(fault.url, serve.url)
    fault.health_status = 503
    HealthMonitor([backend], interval=60, timeout=2).check_now()
    assert [e.healthy for e in backend.replicas.endpoints] == [False, True]


def test_a_name_the_server_does_not_serve_is_found_at_start(serve: Process) -> None:
    backend = vllm(serve.url, model="ghost")
    HealthMonitor([backend], interval=60).check_now()
    assert not backend.available
    assert backend.problem is not None and "does not serve a model named 'ghost'" in backend.problem
    good = vllm(serve.url)
    HealthMonitor([good], interval=60).check_now()
    assert good.available and good.problem is None
