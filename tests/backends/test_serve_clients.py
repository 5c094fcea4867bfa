"""`backends.serve` driven by independent clients: the OpenAI Python client, and every reply (stream and not, chat
and generate) checked against TGI's OpenAPI document."""

from __future__ import annotations

import json
from typing import Any

import httpx
import jsonschema
import pytest
from openai import OpenAI

from tests.support.helpers import Process
from tests.support.openapi import check

MESSAGES: list[Any] = [{"role": "user", "content": "Bonjour, comment vas-tu ?"}]


def openai_client(server: Process) -> OpenAI:
    return OpenAI(base_url=f"{server.url}/v1", api_key="not-needed", max_retries=0)


@pytest.mark.parametrize("model", ["tgi", "lora-a"])
def test_temperature_zero_is_greedy_for_the_base_and_an_adapter(serve: Process, model: str) -> None:
    """OpenAI clients send temperature 0 for deterministic answers; TGI's chat route decodes greedily."""
    c = openai_client(serve)
    answers = [
        c.chat.completions.create(model=model, messages=MESSAGES, temperature=0, max_tokens=8, seed=seed)
        for seed in (1, 2)
    ]
    first, second = answers
    assert first.choices[0].message.content == second.choices[0].message.content  # no sampling: seeds do not matter
    assert first.model == ("lora-a" if model == "lora-a" else "base")  # the base model's id: its folder name
    assert first.usage is not None and first.usage.prompt_tokens > 0 and 0 < first.usage.completion_tokens <= 8
    assert first.choices[0].finish_reason in ("length", "stop")


def test_a_stream_with_usage_and_the_fields_openai_clients_send(serve: Process) -> None:
    c = openai_client(serve)
    chunks = list(
        c.chat.completions.create(
            model="tgi",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
            n=1,
            stop="\n\n\n",
            max_completion_tokens=6,
            seed=3,
            logprobs=False,
        )
    )
    *answer, usage = chunks
    assert usage.choices == [] and usage.usage is not None and 0 < usage.usage.completion_tokens <= 6
    assert usage.usage.total_tokens == usage.usage.prompt_tokens + usage.usage.completion_tokens
    assert all(ch.usage is None for ch in answer) and answer[-1].choices[0].finish_reason in ("length", "stop")
    listed = c.chat.completions.create(model="tgi", messages=MESSAGES, stop=["\n\n\n", "###"], max_tokens=4)
    assert listed.choices[0].message.content is not None
    assert [m.id for m in c.models.list()] == ["base", "lora-a", "lora-b"]


def _events(response: httpx.Response) -> list[Any]:
    return [
        json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ") and line != "data: [DONE]"
    ]


def test_every_route_replies_as_tgi_openapi_says(serve: Process) -> None:
    generate = {"inputs": "Bonjour", "parameters": {"max_new_tokens": 5, "details": True, "seed": 1, "do_sample": True}}
    with httpx.Client(base_url=serve.url, timeout=60) as http:
        check("GenerateResponse", http.post("/generate", json=generate).json())
        [whole] = http.post("/", json=generate).json()
        check("GenerateResponse", whole)
        assert "top_tokens" not in whole["details"] and "best_of_sequences" not in whole["details"]
        for route, body in (("/generate_stream", generate), ("/", {**generate, "stream": True})):
            with http.stream("POST", route, json=body) as response:
                events = _events(response)
            assert len(events) == 5 and all("top_tokens" not in e for e in events)
            for event in events:
                check("StreamResponse", event)
        chat = {"model": "tgi", "messages": MESSAGES, "max_tokens": 5, "temperature": 0}
        check("ChatCompletion", http.post("/v1/chat/completions", json=chat).json())
        with http.stream("POST", "/v1/chat/completions", json={**chat, "stream": True}) as response:
            for chunk in _events(response):
                check("ChatCompletionChunk", chunk)
        check("Info", http.get("/info").json())
        refused = http.post("/generate", json={"inputs": "x", "parameters": {"temperature": 0}})
        assert refused.status_code == 422  # /generate keeps TGI's rule: only the chat route reads 0 as greedy
        check("ErrorResponse", refused.json())


def test_the_checks_do_refuse_a_null_array() -> None:
    """The schema check itself: a `top_tokens: null` (what the server used to send) does not pass."""
    event = {"index": 1, "token": {"id": 1, "text": "a", "logprob": -0.1, "special": False}, "top_tokens": None}
    with pytest.raises(jsonschema.ValidationError):
        check("StreamResponse", event)
    check("StreamResponse", {k: v for k, v in event.items() if k != "top_tokens"})
