"""Group commit on a real SQLite file: waiting callers share a transaction, and each is answered for itself."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import IntegrityError

from arena.store.engine import make_engine
from arena.store.errors import CommitFailed, UnknownBattle
from arena.store.group_commit import GroupCommit, _Call


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'batch.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        conn.exec_driver_sql("CREATE TABLE child (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES parent (id))")
    yield engine
    engine.dispose()


def insert(key: int) -> Callable[[Connection], int]:
    def work(conn: Connection) -> int:
        conn.execute(text("INSERT INTO parent (id) VALUES (:k)"), {"k": key})
        return key

    return work


def insert_then(key: int, error: Exception) -> Callable[[Connection], int]:
    """Writes a row, then fails: a refusal must take the row back with it."""

    def work(conn: Connection) -> int:
        insert(key)(conn)
        raise error

    return work


def stored(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return list(conn.execute(text("SELECT id FROM parent ORDER BY id")).scalars())


def one_batch(writer: GroupCommit, works: list[Callable[[Connection], int]]) -> list[Future[int]]:
    """Submit `works` while the writer is busy, so all of them wait, then let them go as one batch."""
    release = threading.Event()
    pool = ThreadPoolExecutor(len(works) + 1)
    first = pool.submit(writer.run, lambda conn: release.wait(30) and insert(0)(conn))
    futures = []
    for queued, work in enumerate(works, start=1):  # one at a time, so the batch keeps the list's order
        futures.append(pool.submit(writer.run, work))
        deadline = time.monotonic() + 30
        while writer.waiting < queued and time.monotonic() < deadline:
            time.sleep(0.005)
        assert writer.waiting == queued, "the calls never queued behind the busy writer"
    release.set()
    assert first.result(30) == 0
    pool.shutdown(wait=True)
    return futures


def test_waiting_calls_share_one_transaction_and_a_refused_one_loses_no_neighbour(engine: Engine) -> None:
    writer = GroupCommit(engine)
    futures = one_batch(
        writer,
        [insert(1), insert(2), insert(1), insert_then(99, UnknownBattle("b")), insert(3)],
    )
    assert writer.batches == 2  # the busy writer's own, then all five together
    assert [f.result() for f in (futures[0], futures[1], futures[4])] == [1, 2, 3]
    assert isinstance(futures[2].exception(), IntegrityError)  # the duplicate key
    assert isinstance(futures[3].exception(), UnknownBattle)
    assert stored(engine) == [0, 1, 2, 3]  # 99 was rolled back with its refusal


def test_a_failure_that_is_no_refusal_stores_nothing_of_its_batch(engine: Engine) -> None:
    writer = GroupCommit(engine)
    futures = one_batch(writer, [insert(1), insert(1), insert_then(2, RuntimeError("bug")), insert(3)])
    # the second insert(1) was refused only because of the first, which was not stored either: it fails as all do
    assert [type(f.exception()) for f in futures] == [RuntimeError] * 4
    assert stored(engine) == [0]
    assert writer.run(insert(4)) == 4  # and the writer goes on
    assert stored(engine) == [0, 4]


def test_a_failed_commit_reaches_every_caller_of_its_batch(engine: Engine) -> None:
    def orphan(conn: Connection) -> int:  # a foreign key checked only at COMMIT
        conn.exec_driver_sql("PRAGMA defer_foreign_keys = ON")
        conn.exec_driver_sql("INSERT INTO child (id, parent) VALUES (1, 404)")
        return 404

    writer = GroupCommit(engine)
    futures = one_batch(writer, [insert(1), orphan, insert(2)])
    errors = [f.exception() for f in futures]
    # not an IntegrityError: the repository would take that for one caller's duplicate vote
    assert all(isinstance(e, CommitFailed) and "FOREIGN KEY" in str(e.__cause__) for e in errors), errors
    assert stored(engine) == [0]


def test_a_lone_caller_gets_a_transaction_of_its_own(engine: Engine) -> None:
    writer = GroupCommit(engine)
    assert [writer.run(insert(k)) for k in range(3)] == [0, 1, 2]
    with pytest.raises(IntegrityError):
        writer.run(insert(1))
    assert writer.batches == 4 and writer.waiting == 0
    assert stored(engine) == [0, 1, 2]


def test_a_caller_interrupted_while_handed_the_database_hands_it_on(engine: Engine) -> None:
    writer = GroupCommit(engine)
    release = threading.Event()
    with ThreadPoolExecutor(2) as pool:
        busy = pool.submit(writer.run, lambda conn: release.wait(30) and insert(0)(conn))
        deadline = time.monotonic() + 30
        while not release.is_set() and writer.batches == 0 and time.monotonic() < deadline:
            time.sleep(0.005)  # until the busy call is being written
        interrupted = _Call(insert(7))
        with writer._mutex:
            writer._waiting.append(interrupted)  # queued as run() queues it; its thread then stops waiting
        release.set()
        assert busy.result(30) == 0
        assert interrupted.lead  # the busy writer handed the database to it
        writer._abandon(interrupted)  # what run() does when its wait is interrupted
        assert pool.submit(writer.run, insert(8)).result(10) == 8, "the database was left to a caller that was gone"
    assert stored(engine) == [0, 8]
