"""`python -m backends.serve`: a CPU server speaking TGI's protocol, on transformers + peft, for dev and tests.

Routes: POST /, /generate, /generate_stream, /v1/chat/completions; GET /info, /health, /metrics, /v1/models.
Several LoRA adapters share one base model; a request picks one with `parameters.adapter_id` (chat: `model`).
Unlike TGI, an unknown `adapter_id` is a 422 instead of a silent fall-back to the base model.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

import prompts
from backends.local import LocalModelPool, LocalSpec
from backends.serve_chat import chat
from backends.serve_tgi import (
    error_response,
    generate,
    generate_stream_events,
    info_json,
    models_json,
    read_json,
    sse_response,
)
from backends.served import ServedModel
from backends.tgi_protocol import Limits, ProtocolError

log = logging.getLogger("backends.serve")


def create_app(served: ServedModel) -> Starlette:
    """The Starlette app serving `served` with TGI's routes."""
    routes = _Routes(served)
    return Starlette(
        routes=[
            Route("/", routes.counted(routes.compat), methods=["POST"]),
            Route("/generate", routes.counted(routes.generate), methods=["POST"]),
            Route("/generate_stream", routes.counted(routes.generate_stream), methods=["POST"]),
            Route("/v1/chat/completions", routes.chat, methods=["POST"]),
            Route("/info", routes.info, methods=["GET"]),
            Route("/health", routes.health, methods=["GET"]),
            Route("/metrics", routes.metrics, methods=["GET"]),
            Route("/v1/models", routes.models, methods=["GET"]),
        ]
    )


class _Routes:
    """The request handlers of one served model."""

    def __init__(self, served: ServedModel) -> None:
        self.served = served

    def counted(self, fn: Callable[[Any], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        """A route that counts the request, reads its JSON body and hands it to `fn`."""

        async def route(request: Request) -> Response:
            self.served.metrics.requests += 1
            try:
                body = await read_json(request)
            except ProtocolError as exc:
                return error_response(exc, self.served)
            return await fn(body)

        return route

    async def compat(self, body: Any) -> Response:
        """TGI's `/`: streams when asked; otherwise a one-item list, full text by default."""
        if isinstance(body, dict) and body.get("stream"):
            return sse_response(generate_stream_events(self.served, body, full_text_default=True))
        return await generate(self.served, body, full_text_default=True, as_list=True)

    async def generate(self, body: Any) -> Response:
        """POST /generate."""
        return await generate(self.served, body, full_text_default=False)

    async def generate_stream(self, body: Any) -> Response:
        """POST /generate_stream."""
        return sse_response(generate_stream_events(self.served, body, full_text_default=False))

    async def chat(self, request: Request) -> Response:
        """POST /v1/chat/completions."""
        self.served.metrics.requests += 1
        return await chat(self.served, request)

    async def info(self, _: Request) -> Response:
        """GET /info."""
        return JSONResponse(info_json(self.served))

    async def health(self, _: Request) -> Response:
        """GET /health: 200 while the process serves."""
        return Response(status_code=200)

    async def metrics(self, _: Request) -> Response:
        """GET /metrics in Prometheus' text format."""
        text = self.served.metrics.render(self.served.inflight)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    async def models(self, _: Request) -> Response:
        """GET /v1/models."""
        return JSONResponse(models_json(self.served))


def load(
    model: str,
    adapters: dict[str, str],
    *,
    template: str,
    max_concurrent: int,
    max_input_tokens: int | None,
    max_total_tokens: int | None,
    dtype: str = "float32",
) -> tuple[ServedModel, LocalModelPool]:
    """Load the base model and its adapters (sharing the base weights) and fill in the limits."""
    pool = LocalModelPool(max_active_per_model=max_concurrent)
    specs = [LocalSpec("__base__", model, None, template, dtype)]
    specs += [LocalSpec(name, model, path, template, dtype) for name, path in adapters.items()]
    backends = pool.load(specs)
    base = backends.pop("__base__")
    total = max_total_tokens or base.max_total_tokens
    limits = Limits(max_input_tokens=max_input_tokens or max(1, total - 1), max_total_tokens=total)
    model_id = model if not Path(model).exists() else Path(model).resolve().name
    served = ServedModel(model_id, base, backends, template, limits, max_concurrent)
    return served, pool


def _adapter_arg(value: str) -> tuple[str, str]:
    name, sep, path = value.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got '{value}'")
    return name, path


def build_parser() -> argparse.ArgumentParser:
    """The command line of `python -m backends.serve`: every option with what it does and its default."""
    p = argparse.ArgumentParser(prog="python -m backends.serve", description=__doc__.splitlines()[0] if __doc__ else "")
    p.add_argument("--model", required=True, help="base model: a local folder or a Hugging Face hub id (required)")
    p.add_argument(
        "--adapter",
        action="append",
        type=_adapter_arg,
        default=[],
        metavar="NAME=PATH",
        help="a peft LoRA adapter on the base model that requests pick as adapter_id NAME; repeat for more "
        "(default: none, only the base model)",
    )
    p.add_argument(
        "--template",
        default=prompts.TOKENIZER,
        choices=prompts.names(),
        metavar="NAME",
        help="prompt format of /v1/chat/completions: one of %(choices)s (default: %(default)s, the model's own "
        "chat template)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.add_argument("--port", type=int, default=8080, help="port to listen on (default: %(default)s)")
    p.add_argument(
        "--max-concurrent-requests",
        type=int,
        default=128,
        metavar="N",
        help="requests served at once; one more is refused with 429, as TGI does (default: %(default)s)",
    )
    p.add_argument(
        "--max-input-tokens",
        type=int,
        metavar="N",
        help="longest prompt accepted, in tokens (default: the total limit minus one)",
    )
    p.add_argument(
        "--max-total-tokens",
        type=int,
        metavar="N",
        help="prompt plus generated tokens per request (default: the model's context length)",
    )
    p.add_argument(
        "--dtype",
        default="float32",
        choices=["float32", "bfloat16", "float16", "auto"],
        help="weight precision: one of %(choices)s (default: %(default)s)",
    )
    p.add_argument("--threads", type=int, metavar="N", help="torch CPU threads (default: torch's own choice)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, load the model and serve until interrupted."""
    args = build_parser().parse_args(argv)
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    import uvicorn

    from backends.local import ModelLoadError

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        served, pool = load(
            args.model,
            dict(args.adapter),
            template=args.template,
            max_concurrent=args.max_concurrent_requests,
            max_input_tokens=args.max_input_tokens,
            max_total_tokens=args.max_total_tokens,
            dtype=args.dtype,
        )
    except ModelLoadError as exc:
        print(f"backends.serve: {exc}", file=sys.stderr)
        return 2
    log.info(
        "serving %s with adapters %s on http://%s:%d", served.model_id, sorted(served.adapters), args.host, args.port
    )
    try:
        uvicorn.run(create_app(served), host=args.host, port=args.port, log_level="warning")
    finally:
        pool.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
