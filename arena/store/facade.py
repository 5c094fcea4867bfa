"""The services' one door to storage: repository calls run in worker threads, passing failures are retried, and
driver errors come out as the store's own (`StoreUnavailable`), so no service imports SQLAlchemy."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import SQLAlchemyError

from arena.store.errors import StoreUnavailable
from arena.store.repository import Repository
from arena.store.retry import DEFAULT_RETRY, RetryPolicy, reason, retry_write

log = logging.getLogger(__name__)
T = TypeVar("T")


class AsyncStore:
    """Runs repository calls off the event loop, in the spirit of Datasette's `execute_write_fn`."""

    def __init__(self, repo: Repository, *, retry: RetryPolicy = DEFAULT_RETRY) -> None:
        self._repo = repo
        self._retry = retry

    async def write(self, what: str, call: Callable[[Repository], T]) -> T:
        """Run the write `call(repo)` in a worker thread, retried on passing failures and shielded from
        cancellation; a failure that remains is logged (naming `what`) and raised as StoreUnavailable. The
        store's rule errors (DuplicateVote, UnknownBattle …) pass through unchanged."""
        try:
            return await retry_write(lambda: call(self._repo), what=what, policy=self._retry)
        except SQLAlchemyError as exc:
            raise StoreUnavailable(f"could not store {what}: {reason(exc)}") from None

    async def read(self, what: str, call: Callable[[Repository], T]) -> T:
        """Run the read `call(repo)` in a worker thread; a driver failure is logged and raised as StoreUnavailable."""
        try:
            return await asyncio.to_thread(call, self._repo)
        except SQLAlchemyError as exc:
            log.error("could not read %s: %s", what, reason(exc))
            raise StoreUnavailable(f"could not read {what}: {reason(exc)}") from None
