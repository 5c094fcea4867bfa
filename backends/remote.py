"""What the remote backends share: replicas, failover before the first token, timeouts, health probes.

How a replica is talked to is a hook: every request goes through an `InferenceClient` (backends/clients.py) made
by the backend's `ClientFactory`; huggingface_hub's (backends/hf_client.py) is the default.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

import httpx

from backends.base import (
    BackendError,
    BackendOverloaded,
    BackendTimeout,
    BackendUnavailable,
    Chunk,
    GenerationParams,
    Message,
)
from backends.clients import (
    DEFAULT_TIMEOUTS,
    ClientFactory,
    InferenceClient,
    RemoteTimeouts,
    map_common_error,
)
from backends.hf_client import HfClient

__all__ = ["DEFAULT_TIMEOUTS", "RemoteOptions", "RemoteTimeouts"]
log = logging.getLogger(__name__)


class RemoteOptions(TypedDict, total=False):
    """The optional settings every remote backend takes (`**options` of each kind's constructor)."""

    api_key: str | None
    timeouts: RemoteTimeouts
    max_concurrent: int
    client: ClientFactory
    activity: ActivityBoard


@dataclass
class ServerActivity:
    """This process's streams to one server, whichever backends share it (several models on one server)."""

    clock: Callable[[], float] = time.monotonic
    inflight: int = 0
    last_start: float = -math.inf  # when a stream to it last began
    last_success: float = -math.inf  # when a stream from it last ended well

    def began(self) -> None:
        """A stream to this server begins."""
        self.inflight += 1
        self.last_start = self.clock()

    def ended(self, *, ok: bool) -> None:
        """A stream to this server ended (ok: with its last token)."""
        self.inflight -= 1
        if ok:
            self.last_success = self.clock()

    def busy(self, grace: float) -> bool:
        """Whether a probe that times out may just be waiting behind an answer: a stream of ours is running, or
        one began or ended well in the last `grace` seconds (a cancelled one may still run on the server)."""
        return self.inflight > 0 or self.clock() - max(self.last_start, self.last_success) < grace


class ActivityBoard:
    """The activity of every server this process streams from, by base URL (one board per app, shared by all its
    backends, so models served by one server see each other's streams)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._servers: dict[str, ServerActivity] = {}
        self._clock = clock

    def of(self, url: str) -> ServerActivity:
        """The record of the server at this base URL."""
        return self._servers.setdefault(url, ServerActivity(self._clock))


# A probe that times out within this many seconds of a stream's start or good end is not taken as the server
# being down: a single-slot server (llama.cpp) queues the probe behind a generation.
BUSY_GRACE = 60.0


@dataclass
class Endpoint:
    """One replica of a remote model."""

    url: str
    healthy: bool = True  # optimistic until the first probe says otherwise
    inflight: int = 0
    served: int = 0
    server: ServerActivity = field(default_factory=ServerActivity)


@dataclass
class ReplicaSet:
    """The replicas of one model, and how busy each is (touched only from the event loop, except `healthy`)."""

    endpoints: list[Endpoint]
    max_concurrent: int = 32
    _turn: int = field(default=0, repr=False)

    @classmethod
    def of(cls, urls: list[str], max_concurrent: int, board: ActivityBoard) -> ReplicaSet:
        """Replicas for these base URLs, their servers' activity kept on `board`."""
        return cls([Endpoint(u.rstrip("/"), server=board.of(u.rstrip("/"))) for u in urls], max_concurrent)

    @property
    def available(self) -> bool:
        """Whether any replica is healthy."""
        return any(e.healthy for e in self.endpoints)

    def ordered(self) -> list[Endpoint]:
        """Healthy replicas with room, least busy first; ties go to the one that served least recently."""
        ready = [e for e in self.endpoints if e.healthy and e.inflight < self.max_concurrent]
        return sorted(ready, key=lambda e: (e.inflight, e.served))


def auth_headers(api_key: str | None) -> dict[str, str]:
    """Headers for our own probes: the configured key, or nothing at all."""
    return {"authorization": f"Bearer {api_key}"} if api_key else {}


RETRYABLE = (BackendUnavailable, BackendOverloaded)


async def failover_stream(
    replicas: ReplicaSet,
    open_stream: Callable[[Endpoint], AsyncIterator[Chunk]],
    timeouts: RemoteTimeouts,
) -> AsyncGenerator[Chunk, None]:
    """Stream from the least busy replica; before the first token, an overload or connection failure is
    retried once on another replica. Nothing is retried once a token was shown."""
    candidates = replicas.ordered()
    if not candidates:
        if replicas.available:
            raise BackendOverloaded("every replica is at its concurrency limit")
        raise BackendUnavailable("no healthy replica")
    last: BackendError | None = None
    for endpoint in candidates[:2]:
        endpoint.inflight += 1
        endpoint.served += 1
        endpoint.server.began()
        ok = False
        stream = aiter(open_stream(endpoint))
        try:
            try:
                first = await asyncio.wait_for(anext(stream), timeouts.first_token)
            except StopAsyncIteration:
                return
            except BaseException as exc:
                error = _as_backend_error(exc, "first token")
                if isinstance(error, BackendUnavailable):
                    endpoint.healthy = False  # passive health: the monitor brings it back
                if isinstance(error, RETRYABLE):
                    log.warning("replica %s failed before the first token: %s", endpoint.url, error)
                    last = error
                    continue
                raise error from exc
            yield first
            while True:
                try:
                    chunk = await asyncio.wait_for(anext(stream), timeouts.between_tokens)
                except StopAsyncIteration:
                    ok = True
                    return
                except BaseException as exc:
                    raise _as_backend_error(exc, "next token") from exc
                yield chunk
        finally:
            endpoint.inflight -= 1
            endpoint.server.ended(ok=ok)
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()
    assert last is not None
    raise last


def _as_backend_error(exc: BaseException, waiting_for: str) -> BackendError:
    if isinstance(exc, asyncio.CancelledError | GeneratorExit | KeyboardInterrupt):
        raise exc
    if isinstance(exc, asyncio.TimeoutError):
        return BackendTimeout(f"no {waiting_for} in time")
    return map_common_error(exc)


def json_or_none(response: Any) -> Any:
    """The JSON body of an httpx response, or None."""
    try:
        return response.json()
    except ValueError:
        return None


class RemoteBackend:
    """A model behind replicas of an inference server; subclasses say how to stream and how to probe."""

    kind = "remote"

    def __init__(
        self,
        *,
        name: str,
        urls: list[str],
        api_key: str | None = None,
        timeouts: RemoteTimeouts = DEFAULT_TIMEOUTS,
        max_concurrent: int = 32,
        client: ClientFactory = HfClient,
        activity: ActivityBoard | None = None,
    ) -> None:
        self.name = name
        self.replicas = ReplicaSet.of(urls, max_concurrent, activity or ActivityBoard())
        self.timeouts = timeouts
        self._api_key = api_key
        self._clients = {e.url: client(e.url, api_key, timeouts) for e in self.replicas.endpoints}
        self.problem: str | None = None  # a configuration mistake a probe found (e.g. a missing adapter)

    @property
    def available(self) -> bool:
        """Whether any replica is healthy (unavailable models are left out of new battles)."""
        return self.replicas.available

    def stream(self, messages: Sequence[Message], params: GenerationParams) -> AsyncIterator[Chunk]:
        """Stream the reply from the least busy healthy replica."""
        request = self._prepare(messages, params)
        return failover_stream(
            self.replicas, lambda ep: self._open(self._clients[ep.url], request, params), self.timeouts
        )

    def probe(self, http: httpx.Client) -> None:
        """Update every replica's health (called from the health monitor's thread).

        A server this process is streaming from is alive: it is not probed (a single-slot server would queue the
        probe behind the answer, or, as llama.cpp does by default, cut the answer short for it). A probe that
        times out soon after a good stream is no verdict either. A stream that fails to connect still marks its
        replica down at once (`failover_stream`).
        """
        for endpoint in self.replicas.endpoints:
            if endpoint.server.inflight:
                continue
            try:
                ok = self._probe(http, endpoint.url, auth_headers(self._api_key))
            except httpx.TimeoutException:
                if endpoint.server.busy(BUSY_GRACE):
                    log.info("%s: replica %s is busy (its probe timed out near a stream)", self.name, endpoint.url)
                    continue
                log.info("%s: replica %s did not answer its probe in time", self.name, endpoint.url)
                ok = False
            except httpx.HTTPError as exc:
                log.info("%s: replica %s unreachable (%s)", self.name, endpoint.url, type(exc).__name__)
                ok = False
            if ok != endpoint.healthy:
                log.warning("%s: replica %s is now %s", self.name, endpoint.url, "healthy" if ok else "unhealthy")
            endpoint.healthy = ok

    async def aclose(self) -> None:
        """Nothing to release: clients open connections per request."""

    def _misconfigured(self, mistake: str) -> bool:
        """Record a configuration mistake a probe found (the app stops on it at start); the replica is unhealthy."""
        self.problem = f"model '{self.name}': {mistake}"
        log.error("%s", self.problem)
        return False

    def _prepare(self, messages: Sequence[Message], params: GenerationParams) -> Any:
        """What `_open` sends (e.g. a rendered prompt); raise a BackendError if the chat cannot be sent."""
        return list(messages)

    def _open(self, client: InferenceClient, request: Any, params: GenerationParams) -> AsyncIterator[Chunk]:
        raise NotImplementedError

    def _probe(self, http: httpx.Client, url: str, headers: dict[str, str]) -> bool:
        raise NotImplementedError
