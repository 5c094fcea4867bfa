"""The `openai` kind against what real OpenAI-compatible servers do: served-name checks, per-server sampling field
names, greedy decoding, a silent streamed context overflow, 500 refusals, usage counts and busy single-slot servers.

The peers themselves (llama.cpp, transformers serve) are driven in tests/peers; here a scripted server on 127.0.0.1
plays each behaviour exactly, so every branch is reached on every run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from backends import base, server_profiles
from backends.base import Chunk, GenerationParams, Message
from backends.entries import EntryError
from backends.health import HealthMonitor
from backends.openai import OpenAIBackend, OpenAIModel, build
from backends.remote import RemoteTimeouts
from tests.support.faults import FaultServer
from tests.support.helpers import Process

ASK = [Message(role="user", content="Bonjour !")]
FAST = RemoteTimeouts(connect=2, first_token=3, between_tokens=2)


@pytest.fixture
def fault() -> Iterator[FaultServer]:
    server = FaultServer(text="Salut à toi").start()
    yield server
    server.stop()


def entry(url: str, **keys: Any) -> OpenAIModel:
    return OpenAIModel.model_validate({"name": "o", "backend": "openai", "endpoints": [url], "model": "m", **keys})


def backend_of(model: OpenAIModel) -> OpenAIBackend:
    return OpenAIBackend(name=model.name, urls=model.endpoints, model=model.model, profile=model.profile, timeouts=FAST)


def collect(backend: OpenAIBackend, params: GenerationParams) -> list[Chunk]:
    async def run() -> list[Chunk]:
        return [c async for c in backend.stream(ASK, params)]

    return asyncio.run(run())


def test_a_model_name_the_server_does_not_list_is_found_at_start(serve: Process) -> None:
    tgi = server_profiles.PROFILES["tgi"]  # as TGI, backends.serve answers any name: only its listing tells
    wrong = OpenAIBackend(name="o", urls=[serve.url], model="lora-c", profile=tgi)
    HealthMonitor([wrong], interval=60).check_now()
    assert not wrong.available
    assert wrong.problem is not None
    assert f"the server at {serve.url} does not serve a model named 'lora-c'" in wrong.problem
    assert "lists: " in wrong.problem and "lora-a" in wrong.problem
    right = OpenAIBackend(name="o", urls=[serve.url], model="lora-b", profile=tgi)
    HealthMonitor([right], interval=60).check_now()
    assert right.available and right.problem is None


def probed(fault: FaultServer, **keys: Any) -> OpenAIBackend:
    backend = backend_of(entry(fault.url, **keys))
    HealthMonitor([backend], interval=60).check_now()
    return backend


def test_a_name_missing_from_the_listing_is_asked_for_before_it_is_called_wrong(fault: FaultServer) -> None:
    fault.models = ("m:latest",)  # Ollama lists "llama3.2:latest" and answers to "llama3.2"
    backend = probed(fault)
    assert backend.available and backend.problem is None
    assert fault.seen_bodies[-1] == {"model": "m", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}
    asked = len(fault.seen_bodies)
    HealthMonitor([backend], interval=60).check_now()
    assert len(fault.seen_bodies) == asked  # answered once: not asked again at every probe
    fault.mode = "unknown_model"
    refused = probed(fault)
    assert not refused.available and refused.problem == (
        f"model 'o': the server at {fault.url} does not serve a model named 'm' (asked for it, it answered: "
        "model 'm' not found.; its /v1/models lists: m:latest)"
    )


def test_llama_cpps_listing_is_the_only_evidence(fault: FaultServer) -> None:
    fault.models = ("smollm2",)  # it answers to any name: a request would prove nothing
    backend = probed(fault, server="llama.cpp")
    assert not backend.available and backend.problem is not None and "lists: smollm2)" in backend.problem
    assert fault.seen_bodies == []


def test_transformers_serve_is_asked_by_name_whatever_it_lists(fault: FaultServer) -> None:
    fault.models_status = 500  # its listing fails without a hub cache folder, and never names the served model
    assert probed(fault, server="transformers").available
    fault.models_status, fault.models = 200, ("m",)  # listed (in its download cache) but not what it serves
    fault.mode = "unknown_model"
    backend = probed(fault, server="transformers")
    assert not backend.available and backend.problem is not None and "asked for it" in backend.problem


def test_a_failing_listing_falls_back_to_health(fault: FaultServer) -> None:
    fault.models_status = 500
    assert probed(fault, server="llama.cpp").available  # up by /health; no listing to check the name with
    fault.health_status = 503
    down = probed(fault, server="llama.cpp")
    assert not down.available and down.problem is None


def test_a_refused_api_key_is_found_at_start(fault: FaultServer) -> None:
    fault.models_status = 401
    backend = probed(fault)
    assert not backend.available
    assert backend.problem == (
        f"model 'o': the server at {fault.url} refused Corral's requests (HTTP 401): check its API key (`api_key_env`)"
    )


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ("generic", {"top_k": 7, "repetition_penalty": 1.3}),
        ("llama.cpp", {"top_k": 7, "repeat_penalty": 1.3, "min_p": 0.0}),
        ("transformers", {"generation_config": '{"do_sample": true, "top_k": 7, "repetition_penalty": 1.3}'}),
    ],
)
def test_extra_sampling_fields_go_under_the_servers_names(
    fault: FaultServer, server: str, expected: dict[str, Any]
) -> None:
    model = entry(fault.url, server=server, generation={"top_k": 7, "repetition_penalty": 1.3, "max_new_tokens": 9})
    collect(backend_of(model), model.generation)
    body = fault.seen_bodies[-1]
    assert {k: body.get(k) for k in expected} == expected
    assert ("repetition_penalty" in body) == (server == "generic")
    assert body["temperature"] == 0.7 and body["top_p"] == 0.95  # OpenAI's own fields stay at the top level


def test_transformers_serve_greedy_sends_a_generation_config_only_for_its_fields(fault: FaultServer) -> None:
    model = entry(fault.url, server="transformers", generation={"do_sample": False})
    collect(backend_of(model), model.generation)
    assert "generation_config" not in fault.seen_bodies[-1] and fault.seen_bodies[-1]["temperature"] == 0
    model = entry(fault.url, server="transformers", generation={"do_sample": False, "repetition_penalty": 1.2})
    collect(backend_of(model), model.generation)
    body = fault.seen_bodies[-1]
    assert body["generation_config"] == '{"do_sample": false, "repetition_penalty": 1.2}' and body["temperature"] == 0


def test_a_stop_string_the_server_keeps_is_cut(fault: FaultServer) -> None:
    fault.text = "Un deux trois quatre"  # transformers serve keeps the stop string in the text it streams
    chunks = collect(backend_of(entry(fault.url)), GenerationParams(max_new_tokens=8, stop=("ois",)))
    assert "".join(c.text for c in chunks) == "Un deux tr"
    assert sum(c.tokens for c in chunks) == 3  # the pieces read until the stop string, held-back ones included


def test_unset_parameters_switch_off_llama_cpps_own_sampling_defaults(fault: FaultServer) -> None:
    model = entry(fault.url, server="llama.cpp")
    collect(backend_of(model), model.generation)
    body = fault.seen_bodies[-1]
    assert (body["repeat_penalty"], body["top_k"], body["min_p"]) == (1.0, 0, 0.0)


def test_a_field_the_server_lacks_is_a_config_error_and_overrides_rename_fields(fault: FaultServer) -> None:
    with pytest.raises(ValidationError, match="the 'openai' server has no field for top_k"):
        entry(fault.url, server="openai", generation={"top_k": 5})
    with pytest.raises(ValidationError, match="unknown server profile 'ollama'"):
        entry(fault.url, server="ollama")
    model = entry(fault.url, sampling_fields={"repetition_penalty": "frequency_penalty"}, generation={"top_k": 3})
    collect(backend_of(model), model.generation.model_copy(update={"repetition_penalty": 1.2}))
    assert fault.seen_bodies[-1]["frequency_penalty"] == 1.2 and "repetition_penalty" not in fault.seen_bodies[-1]


def test_temperature_zero_in_the_config_is_greedy_on_the_wire(fault: FaultServer) -> None:
    model = entry(fault.url, generation={"temperature": 0, "top_k": 4})
    assert not model.generation.do_sample
    collect(backend_of(model), model.generation)
    body = fault.seen_bodies[-1]
    assert body["temperature"] == 0 and "top_p" not in body and "top_k" not in body
    with pytest.raises(ValidationError):
        entry(fault.url, generation={"temperature": -0.5})


def test_a_silent_empty_stream_is_recognised_as_a_context_overflow(fault: FaultServer) -> None:
    fault.mode = "silent_overflow"
    with pytest.raises(base.InputTooLong) as err:
        collect(backend_of(entry(fault.url)), GenerationParams(max_new_tokens=8))
    assert err.value.user_message.startswith("The conversation is too long for this model")
    streamed, asked = fault.seen_bodies[-2:]
    assert streamed["stream"] is True and asked["stream"] is False and asked["max_tokens"] == 1


def test_an_empty_stream_from_a_server_that_then_answers_is_a_failure(fault: FaultServer) -> None:
    fault.mode = "empty_stream"  # asked again without streaming, the server answers: not a length problem
    with pytest.raises(base.GenerationFailed) as err:
        collect(backend_of(entry(fault.url)), GenerationParams(max_new_tokens=8))
    assert type(err.value) is base.GenerationFailed and "empty stream" in str(err.value)


def test_a_500_validation_error_is_a_refusal_with_the_servers_reason(fault: FaultServer) -> None:
    fault.mode = "validation_500"
    with pytest.raises(base.GenerationFailed) as err:
        collect(backend_of(entry(fault.url)), GenerationParams(max_new_tokens=8))
    sentence = err.value.user_message
    assert sentence == "The model's server refused this request: top_p: Input should be greater than or equal to 0."


def test_the_servers_usage_corrects_the_token_count(fault: FaultServer) -> None:
    fault.usage_tokens = 7  # three text pieces, seven tokens by the server's count
    chunks = collect(backend_of(entry(fault.url)), GenerationParams(max_new_tokens=8))
    assert "".join(c.text for c in chunks) == "Salut à toi"
    assert sum(c.tokens for c in chunks) == 7
    assert fault.seen_bodies[-1]["stream_options"] == {"include_usage": True}
    fault.usage_tokens = None  # no usage data (llama.cpp ignores include_usage): one token per piece
    assert sum(c.tokens for c in collect(backend_of(entry(fault.url)), GenerationParams(max_new_tokens=8))) == 3


def test_a_busy_single_slot_server_is_not_marked_down(fault: FaultServer) -> None:
    backend = backend_of(entry(fault.url))
    monitor = HealthMonitor([backend], interval=60, timeout=0.5)
    fault.models_delay = 2.0  # /v1/models waits behind a generation, as on llama.cpp
    monitor.check_now()
    assert not backend.available  # nothing of ours was running: a probe that times out means down
    backend.replicas.endpoints[0].healthy = True

    fault.models_delay = 0.0
    fault.mode = "hang"  # a stream in flight: the server is not probed at all
    probes = len(fault.seen_headers)
    streaming = threading.Thread(target=_swallow, args=(backend,), daemon=True)
    streaming.start()
    deadline = time.monotonic() + 10
    while not fault.seen_bodies and time.monotonic() < deadline:
        time.sleep(0.01)
    fault.health_status = 503
    monitor.check_now()
    assert backend.available and len(fault.seen_headers) == probes + 1  # just the stream's request
    streaming.join(10)

    fault.mode, fault.health_status, fault.models_delay = "ok", 200, 2.0
    collect(backend, GenerationParams(max_new_tokens=8))  # a good stream just ended
    monitor.check_now()
    assert backend.available  # the probe timed out, but the server just answered: busy, not down


def _swallow(backend: OpenAIBackend) -> None:
    with contextlib.suppress(base.BackendError):
        collect(backend, GenerationParams(max_new_tokens=8))


def test_a_server_that_runs_any_length_gets_corrals_own_refusal(fault: FaultServer, smollm2: Path) -> None:
    model = entry(fault.url, tokenizer=str(smollm2), max_input_tokens=64)
    backend = build(model, {"timeouts": FAST})
    assert backend.guard is not None and 5 < backend.guard.prompt_tokens(ASK) < 64
    long_chat = [Message(role="user", content="mot " * 80)]
    with pytest.raises(base.InputTooLong):
        asyncio.run(_drain(backend, long_chat))
    assert fault.seen_bodies == []  # refused before anything was sent
    assert "".join(c.text for c in collect(backend, GenerationParams(max_new_tokens=8))) == "Salut à toi"
    with pytest.raises(ValidationError, match="`tokenizer` and `max_input_tokens` go together"):
        entry(fault.url, tokenizer=str(smollm2))
    with pytest.raises(EntryError, match="model 'o': the tokenizer '/nowhere' cannot be loaded"):
        build(entry(fault.url, tokenizer="/nowhere", max_input_tokens=8), {})


async def _drain(backend: OpenAIBackend, messages: list[Message]) -> None:
    async for _ in backend.stream(messages, GenerationParams(max_new_tokens=8)):
        pass


def test_a_relative_tokenizer_path_is_resolved_against_the_config(tmp_path: Path, smollm2: Path) -> None:
    from arena.config import ConfigError, load_config

    (tmp_path / "tok").symlink_to(smollm2)
    model = {"name": "o", "backend": "openai", "endpoints": ["http://127.0.0.1:9"], "model": "m"}
    config = tmp_path / "arena.yaml"
    config.write_text(json.dumps({"models": [{**model, "tokenizer": "./tok", "max_input_tokens": 64}]}))
    [loaded] = load_config(config).models
    assert isinstance(loaded, OpenAIModel) and loaded.tokenizer == str((tmp_path / "tok").resolve())
    config.write_text(json.dumps({"models": [{**model, "tokenizer": "./missing", "max_input_tokens": 64}]}))
    with pytest.raises(ConfigError, match=r"tokenizer: '\./missing' does not exist"):
        load_config(config)
