"""Retrying a database write that failed for a passing reason (a lock, a dropped connection, a full disk)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

log = logging.getLogger(__name__)
T = TypeVar("T")
# Failures that may pass by themselves: "database is locked", "disk is full", a dropped PostgreSQL connection, a
# pool with no free connection. An integrity error or a bad statement will fail the same way again: not retried.
TRANSIENT: tuple[type[SQLAlchemyError], ...] = (OperationalError, InterfaceError, PoolTimeout)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a write is tried: `attempts` in all, waiting `first_delay` × `factor`^n between."""

    attempts: int = 3
    first_delay: float = 0.5
    factor: float = 4.0

    def delays(self) -> Iterator[float]:
        """The waits between attempts (one fewer than the attempts)."""
        delay = self.first_delay
        for _ in range(self.attempts - 1):
            yield delay
            delay *= self.factor


def reason(exc: SQLAlchemyError) -> str:
    """The driver's one-line reason, without the statement or its parameters (which hold voter data)."""
    orig = exc.orig if isinstance(exc, DBAPIError) else None
    text = str(orig if orig is not None else type(exc).__name__)
    return text.strip().splitlines()[0][:200] if text.strip() else type(exc).__name__


async def retry_write(
    write: Callable[[], T],
    *,
    what: str,
    policy: RetryPolicy,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """Run the blocking `write` in a worker thread, retrying transient failures with backoff; re-raise the last.

    The whole sequence is shielded: a page closed while a vote waits for a lock does not abandon the vote.
    """

    async def attempts() -> T:
        delays = policy.delays()
        attempt = 1
        while True:
            try:
                return await asyncio.to_thread(write)
            except TRANSIENT as exc:
                delay = next(delays, None)
                if delay is None:
                    log.error("could not store %s after %d attempts: %s", what, attempt, reason(exc))
                    raise
                log.warning(
                    "could not store %s (attempt %d of %d: %s); retrying in %.1f s",
                    what,
                    attempt,
                    policy.attempts,
                    reason(exc),
                    delay,
                )
                attempt += 1
                await sleep(delay)
            except SQLAlchemyError as exc:
                log.error("could not store %s: %s", what, reason(exc))
                raise

    return await asyncio.shield(attempts())


DEFAULT_RETRY = RetryPolicy()  # three tries over about 2.5 s (plus SQLite's 10 s busy timeout per try on a lock)
