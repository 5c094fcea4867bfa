"""Polling the health of remote replicas on a background thread."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Protocol

import httpx

log = logging.getLogger(__name__)


class Probed(Protocol):
    """Anything with replicas to probe."""

    name: str

    def probe(self, http: httpx.Client) -> None:
        """Update the health of every replica."""
        ...


class HealthMonitor:
    """Probes every remote backend every `interval` seconds; unhealthy replicas return once they answer."""

    def __init__(self, backends: Sequence[Probed], *, interval: float, timeout: float = 5.0) -> None:
        self._backends = list(backends)
        self._interval = interval
        self._timeout = timeout
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check_now(self) -> None:
        """One probing round, on the calling thread."""
        with httpx.Client(timeout=self._timeout, trust_env=False) as http:
            for backend in self._backends:
                try:
                    backend.probe(http)
                except Exception:  # a probe bug must not stop the monitor
                    log.exception("health probe of %s failed", backend.name)

    def start(self) -> None:
        """Start the background thread (no-op without remote backends)."""
        if not self._backends or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="health-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the background thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._timeout + 1)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.check_now()
