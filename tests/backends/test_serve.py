"""`backends.serve` over loopback HTTP: huggingface_hub client round trips and TGI's exact wire behaviour."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from huggingface_hub import InferenceClient, TextGenerationOutput
from huggingface_hub.errors import OverloadedError, ValidationError

from backends.serve import build_parser
from backends.tgi import adapter_applied, adapter_listed
from tests.support.helpers import ROOT, Process

PROMPT = "Quelle est la capitale de la France ?"


def client(server: Process) -> InferenceClient:
    return InferenceClient(base_url=server.url, headers={"authorization": ""})


def test_non_stream_with_details_and_seed_reproducibility(serve: Process) -> None:
    c = client(serve)

    def run(seed: int) -> TextGenerationOutput:
        return c.text_generation(
            PROMPT, max_new_tokens=12, details=True, do_sample=True, seed=seed, return_full_text=False
        )

    first, again, other = run(42), run(42), run(43)
    assert first.generated_text == again.generated_text != other.generated_text
    assert first.details is not None
    assert first.details.generated_tokens == len(first.details.tokens) <= 12
    assert first.details.finish_reason in ("length", "eos_token")
    assert first.details.seed == 42


def test_stream_events_add_up_to_the_final_text(serve: Process) -> None:
    c = client(serve)  # keep a reference: a collected client closes its session under a live stream
    events = list(
        c.text_generation(PROMPT, max_new_tokens=10, stream=True, details=True, seed=1, return_full_text=False)
    )
    assert [e.index for e in events] == list(range(1, len(events) + 1))
    assert events[-1].generated_text == "".join(e.token.text for e in events if not e.token.special)
    assert events[-1].details is not None and events[-1].details.generated_tokens == len(events)
    assert all(e.generated_text is None and e.details is None for e in events[:-1])


def test_raw_sse_framing(serve: Process) -> None:
    body = {"inputs": PROMPT, "parameters": {"max_new_tokens": 3}}
    with httpx.stream("POST", f"{serve.url}/generate_stream", json=body, timeout=30) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        raw = r.read().decode()
    frames = [f for f in raw.split("\n\n") if f]
    assert all(f.startswith("data: {") for f in frames) and len(frames) == 3
    assert "[DONE]" not in raw


def test_stop_sequence_is_kept_and_reported(serve: Process) -> None:
    c = client(serve)
    greedy = c.text_generation(PROMPT, max_new_tokens=20, details=True, return_full_text=False)
    assert greedy.details is not None
    stop = next(t.text for t in greedy.details.tokens[3:] if t.text.strip() and "\ufffd" not in t.text)
    cut = c.text_generation(PROMPT, max_new_tokens=20, stop=[stop], details=True, return_full_text=False)
    assert cut.details is not None and cut.details.finish_reason == "stop_sequence"
    assert cut.generated_text.endswith(stop) and greedy.generated_text.startswith(cut.generated_text)


def test_compat_route_answers_a_list_with_full_text_by_default(serve: Process) -> None:
    r = httpx.post(serve.url + "/", json={"inputs": PROMPT, "parameters": {"max_new_tokens": 3}}, timeout=30)
    assert r.status_code == 200 and isinstance(r.json(), list)
    assert r.json()[0]["generated_text"].startswith(PROMPT)


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"temperature": 0}, "`temperature` must be strictly positive"),
        ({"top_p": 1.0}, "`top_p` must be > 0.0 and < 1.0"),
        ({"top_k": 0}, "`top_k` must be strictly positive"),
        ({"max_new_tokens": 0}, "`max_new_tokens` must be strictly positive"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "`stop` supports up to 4 stop sequences. Given: 5"),
        ({"max_new_tokens": 5000}, "`inputs` tokens + `max_new_tokens` must be <= 2048"),
        ({"adapter_id": "nope"}, "adapter `nope` is not loaded"),
        ({"best_of": 2}, "`best_of` > 1 is not supported"),
    ],
)
def test_validation_errors_are_422_with_tgi_shape(serve: Process, parameters: dict[str, object], message: str) -> None:
    r = httpx.post(serve.url + "/generate", json={"inputs": PROMPT, "parameters": parameters}, timeout=30)
    assert r.status_code == 422
    assert r.json()["error_type"] == "validation"
    assert r.json()["error"].startswith("Input validation error: ") and message in r.json()["error"]
    kwargs: dict[str, Any] = {k: v for k, v in parameters.items() if k != "best_of"} or {"top_p": 1.0}
    with pytest.raises(ValidationError):
        client(serve).text_generation(PROMPT, **kwargs)


def test_malformed_bodies_are_422(serve: Process) -> None:
    for body in (b"not json", b"[]", b'{"parameters": {}}', b'{"inputs": ""}', b'{"inputs": "x", "parameters": 3}'):
        r = httpx.post(serve.url + "/generate", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 422 and r.json()["error_type"] == "validation", body


def test_too_long_input_names_the_limit(tight_serve: Process) -> None:
    with pytest.raises(ValidationError, match="must have less than 64 tokens"):
        client(tight_serve).text_generation("mot " * 200, max_new_tokens=2)


def test_overload_is_429_when_not_streaming_and_an_event_when_streaming(tight_serve: Process) -> None:
    body = {"inputs": PROMPT, "parameters": {"max_new_tokens": 1900}}  # greedy: long enough to hold the slot
    with httpx.stream("POST", f"{tight_serve.url}/generate_stream", json=body, timeout=30) as busy:
        lines = busy.iter_lines()  # keep it: a collected line iterator closes the response (a disconnect)
        assert next(lines).startswith('data: {"index":1')  # the one slot is taken
        r = httpx.post(tight_serve.url + "/generate", json=body, timeout=30)
        assert r.status_code == 429 and r.json() == {"error": "Model is overloaded", "error_type": "overloaded"}
        c = client(tight_serve)
        with pytest.raises(OverloadedError):
            list(c.text_generation(PROMPT, max_new_tokens=2, stream=True))


def test_client_disconnect_frees_the_slot(tight_serve: Process) -> None:
    body = {"inputs": PROMPT, "parameters": {"max_new_tokens": 100}}
    with httpx.stream("POST", f"{tight_serve.url}/generate_stream", json=body, timeout=30) as r:
        next(r.iter_lines())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if "tgi_batch_current_size 0" in httpx.get(tight_serve.url + "/metrics").text:
            break
        time.sleep(0.05)
    assert client(tight_serve).text_generation(PROMPT, max_new_tokens=2)


def test_info_health_metrics_and_models(serve: Process) -> None:
    info = httpx.get(serve.url + "/info").json()
    assert info["max_total_tokens"] == 2048 and info["max_stop_sequences"] == 4 and info["model_id"] == "base"
    health = httpx.get(serve.url + "/health")
    assert health.status_code == 200 and health.content == b""
    metrics = httpx.get(serve.url + "/metrics").text
    assert "tgi_request_count" in metrics and "tgi_request_success" in metrics
    ids = [m["id"] for m in httpx.get(serve.url + "/v1/models").json()["data"]]
    assert ids == ["base", "lora-a", "lora-b"]


def test_chat_completions_stream_and_not(serve: Process) -> None:
    c = client(serve)
    messages = [{"role": "user", "content": "Bonjour !"}]
    whole = c.chat_completion(messages, model="lora-a", max_tokens=8, seed=3, temperature=0.7)
    pieces = [
        e.choices[0].delta.content or ""
        for e in c.chat_completion(messages, model="lora-a", max_tokens=8, seed=3, temperature=0.7, stream=True)
    ]
    assert whole.choices[0].message.content == "".join(pieces)
    assert whole.model == "lora-a" and whole.usage.completion_tokens <= 8
    # a placeholder name (what the client sends with no model) means the base model, as in TGI
    base = c.chat_completion(messages, max_tokens=8, seed=3, temperature=0.7)
    assert base.model == "base" and base.choices[0].message.content != whole.choices[0].message.content


def test_chat_stream_ends_with_done(serve: Process) -> None:
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3, "stream": True}
    raw = httpx.post(serve.url + "/v1/chat/completions", json=body, timeout=30).text
    frames = [f for f in raw.split("\n\n") if f]
    assert frames[-1] == "data: [DONE]"
    assert json.loads(frames[0].removeprefix("data: "))["object"] == "chat.completion.chunk"


def test_concurrent_requests_for_different_adapters_match_sequential(serve: Process) -> None:
    def run(adapter: str | None) -> str:
        params = {"max_new_tokens": 24, "adapter_id": adapter} if adapter else {"max_new_tokens": 24}
        r = httpx.post(serve.url + "/generate", json={"inputs": PROMPT, "parameters": params}, timeout=60)
        return str(r.json()["generated_text"])

    order = ["lora-a", "lora-b", None, "lora-a", "lora-b", None]
    alone = [run(a) for a in order]
    with ThreadPoolExecutor(6) as pool:
        together = list(pool.map(run, order))
    assert together == alone
    assert len({alone[0], alone[1], alone[2]}) == 3


def test_adapter_checks(serve: Process) -> None:
    with httpx.Client(timeout=30) as http:
        assert adapter_listed(http, serve.url, "lora-a", {})
        assert not adapter_listed(http, serve.url, "ghost", {})
        assert adapter_applied(http, serve.url, "lora-b", {})
        assert not adapter_applied(http, serve.url, "ghost", {})


def test_many_concurrent_streams_all_finish(serve: Process) -> None:
    """Many short streams at once all finish (no slot leaks)."""
    errors: list[BaseException] = []

    def one() -> None:
        c = client(serve)
        try:
            list(c.text_generation(PROMPT, max_new_tokens=4, stream=True))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert "tgi_batch_current_size 0" in httpx.get(serve.url + "/metrics").text


def test_help_describes_every_option_and_its_default() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "backends.serve", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    shown = " ".join(done.stdout.split())  # argparse wraps lines: compare with the whitespace folded
    options = [a for a in build_parser()._actions if a.option_strings and a.dest != "help"]
    assert {o for a in options for o in a.option_strings} >= {"--model", "--adapter", "--port", "--threads"}
    for action in options:
        assert action.help, f"{action.option_strings[0]} has no help text"
        described = " ".join(action.help.split("%(")[0].split())
        assert described and described in shown, f"{action.option_strings[0]} is not described in --help"
        assert action.required or "(default: " in action.help, f"{action.option_strings[0]} gives no default"
        if action.default not in (None, []):
            assert f"(default: {action.default}" in shown
