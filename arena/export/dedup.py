"""Remembering which rows were already written, on disk, so de-duplication does not grow memory with the export."""

from __future__ import annotations

import hashlib
import sqlite3
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson


def digest(key: Any) -> bytes:
    """A 16-byte fingerprint of a row's content (canonical JSON, BLAKE2b)."""
    return hashlib.blake2b(orjson.dumps(key, option=orjson.OPT_SORT_KEYS), digest_size=16).digest()


class SeenSet:
    """A set of fingerprints in a throw-away SQLite file: constant memory, however many rows."""

    def __init__(self, folder: Path | None = None) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="corral-dedup-", dir=folder)
        self._db = sqlite3.connect(Path(self._dir.name) / "seen.db")
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("PRAGMA cache_size=-16000")  # 16 MB of page cache, whatever the export's size
        self._db.execute("CREATE TABLE seen (digest BLOB PRIMARY KEY) WITHOUT ROWID")

    def add_new(self, digests: list[bytes]) -> list[bool]:
        """For each fingerprint, True when it was not seen before (earlier in this list included); records all."""
        fresh: list[bool] = []
        batch: set[bytes] = set()
        for start in range(0, len(digests), 500):  # well under SQLite's bound-parameter limit
            chunk = digests[start : start + 500]
            marks = ",".join("?" * len(chunk))
            known = {row[0] for row in self._db.execute(f"SELECT digest FROM seen WHERE digest IN ({marks})", chunk)}
            for d in chunk:
                fresh.append(d not in known and d not in batch)
                batch.add(d)
        self._db.executemany("INSERT OR IGNORE INTO seen VALUES (?)", [(d,) for d in batch])
        return fresh

    def close(self) -> None:
        """Drop the file."""
        self._db.close()
        self._dir.cleanup()

    def __enter__(self) -> SeenSet:
        return self

    def __exit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()
