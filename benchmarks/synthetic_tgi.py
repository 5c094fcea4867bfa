"""A SYNTHETIC text-generation-inference server, for benchmarks only: no model, just TGI's wire protocol at a set pace.

It answers every request with ordinary words sent at a fixed time-to-first-token and tokens/s, so it is the
"physical limit" the app is compared with: whatever a client of the app sees on top of it is the app's cost.
Routes follow TGI (see backends/tgi_protocol.py, which validates the requests and frames the events):
`POST /generate_stream`, `POST /` (streams when the body says `"stream": true`), `POST /generate`, `GET /info`,
`GET /health`, `GET /v1/models`; plus two that TGI does not have: `GET /stats` (counters since the last reset)
and `POST /stats/reset`. A request whose prompt names the verdict mark [[A]] (a Corral judging prompt) ends with
one of [[A]] [[B]] [[C]] [[D]], chosen by a hash of the prompt: a synthetic judge. Token timing follows an
absolute schedule (token i is due at ttft + i / tokens_per_s from the request), so a busy event loop delays tokens
but never slows the nominal pace.

    python -m benchmarks.synthetic_tgi --port 8081 --ttft-ms 200 --tokens-per-s 40
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from backends.tgi_protocol import (
    GenerateRequest,
    Limits,
    ProtocolError,
    details_json,
    parse_generate,
    sse,
    token_json,
)

# Plain words, none of them a model or vendor name (the arena's leak guard must stay quiet).
WORDS = tuple(
    " " + w
    for w in [
        "the",
        "answer",
        "depends",
        "on",
        "how",
        "the",
        "team",
        "measures",
        "quality",
        "and",
        "which",
        "examples",
        "it",
        "keeps",
        "for",
        "the",
        "next",
        "round",
        "of",
        "training",
        "so",
        "we",
        "compare",
        "both",
        "variants",
        "on",
        "the",
        "same",
        "questions",
        "before",
        "we",
        "decide",
    ]
)
LIMITS = Limits(max_input_tokens=1_000_000, max_total_tokens=2_000_000, max_stop_sequences=4)


@dataclass(frozen=True)
class Pace:
    """How fast the synthetic model answers."""

    ttft_s: float = 0.2
    tokens_per_s: float = 40.0


# What GET /stats reports, in this order: requests, how they ended, tokens sent, streams open now and at most.
COUNTERS = ("requests", "completed", "disconnected", "tokens_sent", "active", "peak_active")


class Stats(Counter[str]):
    """Counters since the last reset (what the benchmark calls "generated"), keyed by the names in COUNTERS."""

    def __init__(self, active: int = 0) -> None:
        """Zeroed counters, with `active` streams still open (they are the peak so far)."""
        super().__init__(dict.fromkeys(COUNTERS, 0))
        self.update(active=active, peak_active=active)

    def opened(self) -> None:
        """A stream started."""
        self.update(requests=1, active=1)
        self["peak_active"] = max(self["peak_active"], self["active"])

    def closed(self, *, finished: bool) -> None:
        """A stream ended: all its tokens sent, or the client went away first."""
        self["active"] -= 1
        self["completed" if finished else "disconnected"] += 1


JUDGE_CUE = "[[A]]"  # Corral's judging prompts name the marks: a judge's request is answered with one
_MARKS = (" [[A]]", " [[B]]", " [[C]]", " [[D]]")


def verdict_mark(prompt: str) -> str:
    """A synthetic judge's verdict: one of the four marks, fixed by the prompt (so a swapped reading may differ)."""
    return _MARKS[hashlib.sha256(prompt.encode("utf-8")).digest()[0] % len(_MARKS)]  # (CRC-32 is linear: a swap
    # of the answers changes it by a pattern, so both orders got the same mark far more often than by chance)


def token_text(index: int) -> str:
    """The text of the index-th generated token (0-based): words cycled, so counting words counts tokens."""
    return WORDS[index % len(WORDS)]


class SyntheticTgi:
    """The server's state: its pace and counters; `app` is the ASGI application."""

    def __init__(self, pace: Pace) -> None:
        """A server answering at `pace`."""
        self.pace = pace
        self.stats = Stats()
        self.app = Starlette(
            routes=[
                Route("/", self.compat, methods=["POST"]),
                Route("/generate", self.generate, methods=["POST"]),
                Route("/generate_stream", self.generate_stream, methods=["POST"]),
                Route("/info", self.info, methods=["GET"]),
                Route("/health", self.health, methods=["GET"]),
                Route("/v1/models", self.models, methods=["GET"]),
                Route("/stats", self.get_stats, methods=["GET"]),
                Route("/stats/reset", self.reset_stats, methods=["POST"]),
            ]
        )

    async def _parse(self, request: Request, *, full_text_default: bool) -> GenerateRequest:
        try:
            body = await request.json()
        except ValueError:
            body = None
        return parse_generate(body, LIMITS, full_text_default=full_text_default)

    async def _tokens(self, req: GenerateRequest) -> AsyncIterator[tuple[int, str]]:
        """(index, text) of each token, each sent no earlier than its scheduled time."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i in range(req.params.max_new_tokens):
            due = start + self.pace.ttft_s + i / self.pace.tokens_per_s
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            last = i == req.params.max_new_tokens - 1
            yield i, verdict_mark(req.inputs) if last and JUDGE_CUE in req.inputs else token_text(i)

    async def _events(self, req: GenerateRequest) -> AsyncIterator[bytes]:
        self.stats.opened()
        finished = False
        text = ""
        try:
            count = req.params.max_new_tokens
            async for i, piece in self._tokens(req):
                text += piece
                last = i == count - 1
                event: dict[str, Any] = {
                    "index": i + 1,
                    "token": token_json(1000 + i % len(WORDS), piece, -0.5, False),
                    "generated_text": (req.inputs + text if req.return_full_text else text) if last else None,
                    "details": details_json("length", count, req.params.seed, 8, None)
                    if last and req.details
                    else None,
                }
                yield sse(event)
                self.stats["tokens_sent"] += 1
            finished = True
        finally:
            self.stats.closed(finished=finished)

    async def _stream(self, request: Request, *, full_text_default: bool) -> Response:
        try:
            req = await self._parse(request, full_text_default=full_text_default)
        except ProtocolError as exc:
            return JSONResponse(exc.body(), status_code=exc.status)
        return StreamingResponse(self._events(req), media_type="text/event-stream")

    async def generate_stream(self, request: Request) -> Response:
        """TGI's `/generate_stream` (return_full_text defaults to false)."""
        return await self._stream(request, full_text_default=False)

    async def compat(self, request: Request) -> Response:
        """TGI's `/`: streams when `stream` is true (huggingface_hub's text_generation posts here)."""
        try:
            body = await request.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("stream"):
            return await self._stream(request, full_text_default=True)
        reply = await self.generate(request, full_text_default=True)
        return JSONResponse([reply]) if isinstance(reply, dict) else reply

    async def generate(self, request: Request, *, full_text_default: bool = False) -> Any:
        """TGI's `/generate`: the whole answer once it is done (at the same pace)."""
        try:
            req = await self._parse(request, full_text_default=full_text_default)
        except ProtocolError as exc:
            return JSONResponse(exc.body(), status_code=exc.status)
        tokens = [t async for t in self._tokens(req)]
        self.stats.update(requests=1, completed=1, tokens_sent=len(tokens))
        text = "".join(piece for _, piece in tokens)
        listed = [token_json(1000 + i % len(WORDS), piece, -0.5, False) for i, piece in tokens]
        body = {
            "generated_text": req.inputs + text if req.return_full_text else text,
            "details": details_json("length", len(tokens), req.params.seed, 8, listed) if req.details else None,
        }
        if request.url.path == "/":
            return body
        return JSONResponse(body)

    async def info(self, request: Request) -> Response:
        """TGI's `/info`, with limits large enough never to refuse a benchmark request."""
        return JSONResponse(
            {
                "model_id": "synthetic",
                "model_sha": None,
                "model_pipeline_tag": "text-generation",
                "max_concurrent_requests": 100_000,
                "max_best_of": 1,
                "max_stop_sequences": LIMITS.max_stop_sequences,
                "max_input_tokens": LIMITS.max_input_tokens,
                "max_total_tokens": LIMITS.max_total_tokens,
                "validation_workers": 1,
                "max_client_batch_size": 1,
                "router": "synthetic",
                "version": "synthetic",
                "sha": None,
                "docker_label": None,
            }
        )

    async def health(self, request: Request) -> Response:
        """TGI's `/health`: 200, empty body."""
        return Response(status_code=200)

    async def models(self, request: Request) -> Response:
        """`/v1/models`: one model."""
        return JSONResponse({"object": "list", "data": [{"id": "synthetic", "object": "model", "owned_by": "bench"}]})

    async def get_stats(self, request: Request) -> Response:
        """Counters since the last reset (not a TGI route)."""
        return JSONResponse({**self.stats, "monotonic": time.monotonic()})

    async def reset_stats(self, request: Request) -> Response:
        """Zero the counters, keeping the number of streams still open (not a TGI route)."""
        self.stats = Stats(active=self.stats["active"])
        return JSONResponse(dict(self.stats))


def main(argv: list[str] | None = None) -> int:
    """Serve the synthetic model until interrupted."""
    import uvicorn

    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8081)
    p.add_argument("--ttft-ms", type=float, default=200.0, help="time to first token")
    p.add_argument("--tokens-per-s", type=float, default=40.0, help="tokens per second of each stream")
    args = p.parse_args(argv)
    server = SyntheticTgi(Pace(ttft_s=args.ttft_ms / 1000, tokens_per_s=args.tokens_per_s))
    uvicorn.run(server.app, host=args.host, port=args.port, log_level="warning", backlog=4096, timeout_keep_alive=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
