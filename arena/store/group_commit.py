"""How the hot writes reach the database: SQLite commits concurrent callers together (group commit), PostgreSQL
runs each write as one autocommitted statement. Either way a caller returns only after its write committed."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from arena.store.errors import CommitFailed, StoreError

T = TypeVar("T")
# A call's own refusal (a duplicate vote, an unknown battle): its savepoint is rolled back and its neighbours in the
# batch go on. Anything else (a lock, a full disk, a bug) fails the whole batch: nothing of it is stored.
REFUSALS: tuple[type[Exception], ...] = (StoreError, IntegrityError)


class Writer(Protocol):
    """Runs one call's statements in a transaction and returns once that transaction committed."""

    def run(self, work: Callable[[Connection], T]) -> T:
        """`work(conn)`'s result, after its commit; its exception when it failed (then nothing of it is stored)."""
        ...


class OneStatement:
    """Each call is a single statement, committed by the database on its own: no BEGIN/COMMIT round trips.

    Only for work that executes exactly one statement (PostgreSQL's data-modifying CTEs make every hot write one).
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")

    def run(self, work: Callable[[Connection], T]) -> T:
        """Run `work` on an autocommit connection."""
        with self._engine.connect() as conn:
            return work(conn)


class _Call(Generic[T]):
    """One caller's work, waiting for a batch or done in one; `wake` is released when it is done or must lead."""

    __slots__ = ("error", "lead", "result", "wake", "work")

    def __init__(self, work: Callable[[Connection], T]) -> None:
        self.work = work
        self.result: T | None = None
        self.error: BaseException | None = None
        self.lead = False
        self.wake = threading.Lock()
        self.wake.acquire()


class GroupCommit:
    """One writer at a time, with the waiting callers' work batched into its transaction.

    The caller that finds the database free (or is handed it) writes every call waiting at that moment, its own
    included, each in a savepoint of one transaction, commits once, hands the database to the next waiting caller
    and wakes the ones it wrote. A refused call is rolled back to its savepoint and raises in its own caller only;
    any other failure, the commit's included, raises in every caller of the batch (refused ones too: a refusal may
    rest on a neighbour's write that was not stored) and stores none of it. A lone caller gets a transaction of its
    own, as before.
    """

    def __init__(self, engine: Engine, *, begin: str = "BEGIN IMMEDIATE") -> None:
        self._engine = engine
        self._begin = begin  # SQLite: take the write lock up front (a deferred upgrade can fail without waiting)
        self._mutex = threading.Lock()
        self._waiting: list[_Call[Any]] = []
        self._writing = False
        self.batches = 0  # transactions tried (for tests and diagnostics)

    @property
    def waiting(self) -> int:
        """How many calls wait for the next batch."""
        with self._mutex:
            return len(self._waiting)

    def run(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in the next batch; return its result once that batch committed."""
        call = _Call(work)
        with self._mutex:
            self._waiting.append(call)
            call.lead = not self._writing
            self._writing = True
        if not call.lead:
            try:
                call.wake.acquire()  # done, or handed the database
            except BaseException:  # interrupted while waiting (Ctrl-C in a command's main thread)
                self._abandon(call)
                raise
        if call.lead:
            self._lead()
        if call.error is not None:
            raise call.error
        return call.result  # type: ignore[return-value]  # set by the batch whenever error is not

    def _lead(self) -> None:
        """Write what is waiting, hand the database on (or free it), wake the callers written."""
        with self._mutex:
            batch, self._waiting = self._waiting, []
        try:
            self._write(batch)
        finally:
            with self._mutex:
                self._hand_on()
            for call in batch:
                if not call.lead:
                    call.wake.release()

    def _hand_on(self) -> None:
        """Make the first waiting caller the writer, or free the database (under the mutex)."""
        if self._waiting:
            self._waiting[0].lead = True
            self._waiting[0].wake.release()
        else:
            self._writing = False

    def _abandon(self, call: _Call[Any]) -> None:
        """Forget a caller that stopped waiting; if the database was just handed to it, hand it on."""
        with self._mutex:
            if call in self._waiting:
                self._waiting.remove(call)
            if call.lead:  # made the writer as it was interrupted: never leave the database to nobody
                self._hand_on()

    def _write(self, batch: list[_Call[Any]]) -> None:
        """Write `batch` in one transaction; record each call's result or error."""
        self.batches += 1
        try:
            with self._engine.connect() as conn:
                try:
                    conn.exec_driver_sql(self._begin)
                    for call in batch:
                        _isolated(conn, call)
                    conn.commit()
                except BaseException:
                    # a failed COMMIT can leave the driver's transaction open, and the pool would keep it so:
                    # closing the connection is the one sure way to roll it back
                    conn.invalidate()
                    raise
        except BaseException as exc:  # the transaction is gone: no call of this batch was stored
            failure: BaseException = exc
            if isinstance(exc, IntegrityError):  # at COMMIT: not any one caller's refusal (no "duplicate vote")
                failure = CommitFailed("the database refused to commit this write")
                failure.__cause__ = exc
            for call in batch:  # refused calls too: a refusal may rest on a neighbour that was not stored
                call.error = failure
            if not isinstance(exc, Exception):
                raise


def _isolated(conn: Connection, call: _Call[Any]) -> None:
    """Run one call in a savepoint: its refusal undoes its own statements only. (Plain SQL: SQLAlchemy's
    begin_nested costs more than the statements of a vote.)"""
    conn.exec_driver_sql("SAVEPOINT call")
    try:
        call.result = call.work(conn)
    except REFUSALS as exc:
        conn.exec_driver_sql("ROLLBACK TO SAVEPOINT call")
        call.error = exc
    conn.exec_driver_sql("RELEASE SAVEPOINT call")
