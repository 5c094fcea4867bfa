"""Keeping the data healthy: battles left open by a dead process, online SQLite backups, PostgreSQL guidance."""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import uuid
from collections.abc import Callable
from contextlib import closing
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from arena.store.repository import Repository, utcnow

PREFIX_CHARS = 8  # of a 32-character battle id; the rest stays random


def instance_prefix(instance: str) -> str:
    """The battle-id prefix of an app instance: a stable hash of its name (host and data folder, or configured)."""
    return hashlib.sha256(instance.encode("utf-8")).hexdigest()[:PREFIX_CHARS]


def battle_ids(prefix: str) -> Callable[[], str]:
    """New battle ids that start with this instance's prefix, so a restarted instance can find its own."""
    return lambda: prefix + uuid.uuid4().hex[: 32 - len(prefix)]


def close_interrupted(
    repo: Repository, *, prefix: str, idle_minutes: int, clock: Callable[[], datetime] = utcnow
) -> int:
    """At start-up: close the battles this instance's previous process left open, and any idle for too long.

    Battles of other live instances sharing the database carry another prefix, so they stay open unless idle.
    """
    return repo.close_open_battles(id_prefix=prefix, idle_before=clock() - timedelta(minutes=idle_minutes))


class BackupError(Exception):
    """A backup that cannot be made; the message is one line for the operator."""


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL, or None for any other database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    if not parsed.database or parsed.database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(parsed.database).expanduser()


def backup_sqlite(source: Path, out: Path) -> int:
    """Copy a live SQLite file to `out` with SQLite's online backup API; returns the bytes written.

    The copy is one consistent snapshot taken in a single step (writers in WAL mode are not blocked, and a
    step-wise copy would restart on every write). It is written beside `out` and renamed: no half backup.
    """
    if not source.exists():
        raise BackupError(f"no database at {source}")
    if out.exists() and out.resolve() == source.resolve():
        raise BackupError("the backup file cannot be the database itself")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.{secrets.token_hex(4)}.partial")
    try:
        with closing(sqlite3.connect(source, timeout=30)) as src, closing(sqlite3.connect(partial)) as dst:
            src.backup(dst)
            ok = dst.execute("PRAGMA integrity_check").fetchone()
            if ok is None or ok[0] != "ok":
                raise BackupError(f"the copy of {source} failed its integrity check")
        partial.replace(out)
    except sqlite3.Error as exc:
        raise BackupError(f"could not back up {source}: {exc}") from None
    finally:
        partial.unlink(missing_ok=True)
    return out.stat().st_size


def pg_dump_guidance(url: str, out: Path) -> str:
    """How to back up (and restore) a non-SQLite database; the password is never printed."""
    parsed = make_url(url)
    shown = parsed.render_as_string(hide_password=True)
    # rebuilt without the password (URL.set(password=None) would keep it), for libpq's own URL syntax
    bare = URL.create("postgresql", parsed.username, None, parsed.host, parsed.port, parsed.database, parsed.query)
    libpq = bare.render_as_string(hide_password=False)
    return (
        f"{shown} is not a SQLite file; back it up with the database's own tool. For PostgreSQL:\n"
        f'  pg_dump --format=custom --file "{out}" "{libpq}"\n'
        "(give the password through PGPASSWORD or ~/.pgpass, not on the command line). pg_dump takes a consistent "
        "snapshot while the arena keeps writing. To restore into an empty database:\n"
        f'  pg_restore --no-owner --dbname "<new database URL>" "{out}"\n'
        "then point DATABASE_URL at it; the app migrates it to the newest schema on start."
    )
