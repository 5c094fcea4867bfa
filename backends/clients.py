"""The HTTP client hook of the remote backends: what a client library must offer, whichever library it is.

`RemoteBackend` talks to a replica only through an `InferenceClient`; `backends.hf_client.HfClient`
(huggingface_hub) is the default. Another library plugs in as a `ClientFactory` passed to a backend (per kind,
in its builder), without touching `RemoteBackend`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from backends.base import (
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    Chunk,
    GenerationFailed,
    GenerationParams,
    Message,
)


@dataclass(frozen=True)
class RemoteTimeouts:
    """Seconds to wait for a connection, for the first token, and between tokens."""

    connect: float = 5.0
    first_token: float = 60.0
    between_tokens: float = 30.0


DEFAULT_TIMEOUTS = RemoteTimeouts()


class Rejected(GenerationFailed):
    """The server refused the request as invalid for a reason other than its length; its reason is shown."""

    user_message = "The model's server refused this request."

    def __init__(self, *args: object, reason: str | None = None) -> None:
        super().__init__(*args)
        if shown := shown_reason(reason):
            self.user_message = f"The model's server refused this request: {shown}"


def error_message(body: Any) -> str | None:
    """The message of an error body: OpenAI's {"error": {"message": ...}}, TGI's {"error": "..."}, FastAPI's
    {"detail": "..."} or {"detail": [{"loc": [...], "msg": ...}]} (its first item); None for anything else."""
    if not isinstance(body, dict):
        return None
    error = body.get("error", body.get("detail"))
    if isinstance(error, list) and error and isinstance(error[0], dict):
        loc, msg = error[0].get("loc"), error[0].get("msg")
        field = loc[-1] if isinstance(loc, list) and loc else None
        error = f"{field}: {msg}" if field is not None and isinstance(msg, str) else msg
    if isinstance(error, dict):
        error = error.get("message")
    return error if isinstance(error, str) and error else None


# one item of a pydantic validation error as FastAPI-based servers print it (llama.cpp's: "1 validation error:\n
# {'type': ..., 'loc': ('body', 'top_p'), 'msg': 'Input should be ...', ...}\n  File ..."), either quote style
PYDANTIC_ITEM = re.compile(r"""['"]loc['"]: [(\[]([^)\]]*)[)\]], ['"]msg['"]: (['"])(.*?)\2""")


def shown_reason(reason: str | None, limit: int = 200) -> str:
    """A server's error message fit to show in a pane: the field and message of a validation error, else the
    first line; one sentence's length, ending in a stop (never a stack trace)."""
    if not reason or not reason.strip():
        return ""
    item = PYDANTIC_ITEM.search(reason)
    if item:
        field = item.group(1).split(",")[-1].strip(" '\"") or item.group(1)
        reason = f"{field}: {item.group(3)}"
    line = " ".join(reason.strip().splitlines()[0].split())
    if len(line) > limit:
        line = line[:limit].rsplit(" ", 1)[0] + " ..."
    return line if line.endswith((".", "...", "!", "?")) else f"{line}."


@dataclass(frozen=True)
class TokenEvent:
    """One streamed token of a raw text generation (TGI's `/` route)."""

    text: str
    special: bool = False
    last: bool = False  # the server's final event; a stream that ends without one was cut


class InferenceClient(Protocol):
    """One replica's HTTP client: streams answers, and raises only BackendErrors (with their user sentence)."""

    def chat(
        self,
        messages: Sequence[Message],
        *,
        model: str,
        params: GenerationParams,
        stop: Sequence[str],
        extra: Mapping[str, Any],
    ) -> AsyncIterator[Chunk]:
        """Stream an OpenAI-style /v1/chat/completions answer, `extra` added to the body as it is (the server's own
        sampling fields); GenerationFailed if it ends without a finish reason."""
        ...

    def generate(
        self, prompt: str, *, params: GenerationParams, stop: Sequence[str], adapter_id: str | None
    ) -> AsyncIterator[TokenEvent]:
        """Stream a raw-prompt generation token by token (TGI's native route)."""
        ...


# (base URL, API key or None, timeouts) -> the client of that replica
ClientFactory = Callable[[str, str | None, RemoteTimeouts], InferenceClient]


def map_common_error(exc: BaseException) -> BackendError:
    """The backend error for a failure no client library claimed (a client maps its own errors first)."""
    if isinstance(exc, BackendError):
        return exc
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, asyncio.TimeoutError):
        return BackendTimeout(text)
    if isinstance(exc, ConnectionError):
        return BackendUnavailable(text)
    # a dropped connection mid-stream, a malformed SSE line, anything else: the answer failed
    return GenerationFailed(text)
