"""The benchmarks' synthetic TGI server speaks what the app's TGI backend reads, and bench_votes counts right.

Smoke tests only: no timing is asserted (benchmarks print figures, tests check behaviour).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from backends.base import GenerationParams
from backends.tgi import TgiBackend
from benchmarks.bench_votes import run
from benchmarks.harness import count_tokens, direct_stream, start_synthetic
from tests.support.helpers import Process


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    server = start_synthetic(tmp_path_factory.mktemp("synthetic"), ttft_ms=1, tokens_per_s=2000)
    yield server
    server.stop()


def test_the_tgi_backend_streams_every_synthetic_token(synthetic: Process) -> None:
    backend = TgiBackend(name="syn", urls=[synthetic.url], template="chatml")
    params = GenerationParams(max_new_tokens=17, temperature=0.7, top_p=0.95)

    async def answer() -> str:
        return "".join([chunk.text async for chunk in backend.stream([{"role": "user", "content": "hi"}], params)])

    text = asyncio.run(answer())
    assert count_tokens(text) == 17
    stats = httpx.get(f"{synthetic.url}/stats", timeout=10).json()
    assert stats["tokens_sent"] >= 17 and stats["active"] == 0


def test_the_synthetic_server_follows_tgi_shapes(synthetic: Process) -> None:
    trace = asyncio.run(direct_stream(synthetic.url, 5))
    assert trace.tokens == 5
    assert httpx.get(f"{synthetic.url}/health", timeout=10).status_code == 200
    info = httpx.get(f"{synthetic.url}/info", timeout=10).json()
    assert info["max_stop_sequences"] == 4 and info["max_total_tokens"] > 0
    body = {"inputs": "hi", "parameters": {"max_new_tokens": 3, "details": True}}
    reply = httpx.post(f"{synthetic.url}/generate", json=body, timeout=10).json()
    assert count_tokens(reply["generated_text"]) == 3 and len(reply["details"]["tokens"]) == 3
    refused = httpx.post(f"{synthetic.url}/generate_stream", json={"inputs": "hi", "parameters": {"top_p": 1.0}})
    assert refused.status_code == 422 and refused.json()["error_type"] == "validation"


def test_a_judging_prompt_gets_a_verdict_from_the_synthetic_judge(synthetic: Process) -> None:
    from arena.judging import Verdict, load_template, parse_verdict

    backend = TgiBackend(name="syn", urls=[synthetic.url], template="chatml")
    messages = load_template("pairwise").messages("Question?", "One answer.", "Another answer.")
    params = GenerationParams(max_new_tokens=6, do_sample=False)

    async def answer() -> str:
        return "".join([chunk.text async for chunk in backend.stream(messages, params)])

    assert parse_verdict(asyncio.run(answer())) in {Verdict.A, Verdict.B, Verdict.TIE, Verdict.BOTH_BAD}


def test_bench_votes_stores_every_vote_once(tmp_path: Path) -> None:
    result = run(f"sqlite:///{tmp_path / 'votes.db'}", votes_per_writer=3, writers=4)
    assert result["votes_stored"] == 12 and result["vote_totals_sum"] == 12
    assert result["lost"] == 0 and result["duplicates"] == 0 and result["failures"] == 0
