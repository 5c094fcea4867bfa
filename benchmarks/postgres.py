"""A PostgreSQL server for the tests and the vote benchmark: the one CORRAL_TEST_POSTGRES_URL names, or a
throwaway cluster.

The throwaway cluster lives in a temporary folder on a free port of 127.0.0.1 (never the machine's own cluster),
runs without fsync (its data is thrown away), and is stopped and deleted at the end of the session. PostgreSQL
refuses to run as root, so under root (CI) the server runs as the `postgres` user the Debian package creates.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path

import psycopg
from sqlalchemy.engine import URL, make_url

from benchmarks.processes import free_port

URL_VARIABLE = "CORRAL_TEST_POSTGRES_URL"
CLUSTER_PREFIX = "corral-pg-"
INSTALL_HINT = (
    "install the Debian package postgresql (`make test` does it when run as root) "
    f"or set {URL_VARIABLE} to a server where that role may create databases"
)
# fast and throwaway: no durability, enough connections for two app processes with their pools
SERVER_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
}


class PostgresUnavailable(Exception):
    """No PostgreSQL server could be found or started; the message says why and what to do."""


def libpq_url(url: URL) -> str:
    """The URL psycopg itself understands (no `+psycopg` driver suffix)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass
class PostgresServer:
    """A reachable server where the tests may create and drop databases."""

    admin_url: URL  # a SQLAlchemy URL (postgresql+psycopg://…) of a database to connect to for CREATE DATABASE
    cluster: Path | None = None  # the throwaway cluster's folder, when this session started the server
    binaries: Path | None = None  # where its pg_ctl is
    run_as: list[str] = field(default_factory=list)  # runuser -u postgres -- under root
    _names: Iterator[int] = field(default_factory=count)

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of one database on this server."""
        return self.admin_url.set(database=database).render_as_string(hide_password=False)

    def create_database(self, *, template: str | None = None) -> str:
        """A new, empty database (or a copy of `template`); returns its name."""
        name = f"corral_test_{os.getpid()}_{next(self._names)}"
        clause = f' TEMPLATE "{template}"' if template else ""
        self.execute(f'CREATE DATABASE "{name}"{clause}')
        return name

    def drop_database(self, name: str) -> None:
        """Drop a database, ending any connection a test left open to it."""
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def execute(self, sql: str) -> None:
        """Run one statement outside a transaction (CREATE/DROP DATABASE need that)."""
        with psycopg.connect(libpq_url(self.admin_url), autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.encode())

    def stop(self) -> None:
        """Stop and delete the throwaway cluster, if this session started one."""
        if self.cluster is None or self.binaries is None:
            return
        subprocess.run(
            [*self.run_as, str(self.binaries / "pg_ctl"), "stop", "-D", str(self.cluster / "data"), "-m", "fast"],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(self.cluster, ignore_errors=True)


def connect_or_start(environ: Mapping[str, str]) -> PostgresServer:
    """The server named by CORRAL_TEST_POSTGRES_URL, else a throwaway cluster started now."""
    given = environ.get(URL_VARIABLE)
    if given:
        server = PostgresServer(admin_url=make_url(given))
        try:
            server.execute("SELECT 1")
        except psycopg.Error as exc:
            shown = server.admin_url.render_as_string(hide_password=True)
            raise PostgresUnavailable(f"{URL_VARIABLE}={shown} cannot be reached: {exc}".strip()) from exc
        return server
    return start_cluster()


def server_binaries() -> Path:
    """The folder holding initdb and pg_ctl: on PATH, or the newest Debian /usr/lib/postgresql/N/bin."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).resolve().parent
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: _version(p.parents[1].name))
    if debian:
        return debian[-1].parent
    raise PostgresUnavailable(f"no PostgreSQL server programs (initdb, pg_ctl) were found; {INSTALL_HINT}.")


def start_cluster() -> PostgresServer:
    """initdb a cluster in a temporary folder and start it on a free port of 127.0.0.1."""
    binaries = server_binaries()
    run_as: list[str] = []
    if os.geteuid() == 0:
        run_as = ["runuser", "-u", "postgres", "--"]
    stop_abandoned_clusters(binaries, run_as)
    folder = Path(tempfile.mkdtemp(prefix=CLUSTER_PREFIX))
    (folder / "owner.pid").write_text(str(os.getpid()))
    if run_as:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(folder)
            raise PostgresUnavailable(
                f"PostgreSQL refuses to run as root and there is no `postgres` user to run it as; {INSTALL_HINT}."
            ) from None
        os.chown(folder, user.pw_uid, user.pw_gid)
    port = free_port()
    options = " ".join(f"-c {k}={v}" for k, v in SERVER_SETTINGS.items())
    steps = [
        ["initdb", "-D", str(folder / "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
        [
            "pg_ctl",
            "start",
            "-w",
            "-t",
            "60",
            "-D",
            str(folder / "data"),
            "-l",
            str(folder / "server.log"),
            "-o",
            f"-h 127.0.0.1 -p {port} -k {folder} {options}",
        ],
    ]
    for program, *args in steps:
        result = subprocess.run(
            [*run_as, str(binaries / program), *args], capture_output=True, text=True, check=False, timeout=120
        )
        if result.returncode != 0:
            log = folder / "server.log"
            detail = (result.stderr or result.stdout).strip() + ("\n" + log.read_text()[-2000:] if log.exists() else "")
            shutil.rmtree(folder, ignore_errors=True)
            raise PostgresUnavailable(f"`{program}` failed (exit {result.returncode}): {detail}")
    url = URL.create("postgresql+psycopg", username="postgres", host="127.0.0.1", port=port, database="postgres")
    return PostgresServer(admin_url=url, cluster=folder, binaries=binaries, run_as=run_as)


def stop_abandoned_clusters(binaries: Path, run_as: list[str]) -> None:
    """Stop and delete throwaway clusters whose test session died without stopping them (killed, not ended)."""
    for folder in Path(tempfile.gettempdir()).glob(f"{CLUSTER_PREFIX}*"):
        try:
            owner = int((folder / "owner.pid").read_text())
        except (OSError, ValueError):
            continue  # half-created, or not one of these clusters
        if _alive(owner):
            continue
        command = [str(binaries / "pg_ctl"), "stop", "-D", str(folder / "data"), "-m", "immediate"]
        subprocess.run([*run_as, *command], capture_output=True, check=False)
        shutil.rmtree(folder, ignore_errors=True)


def in_ci(environ: Mapping[str, str]) -> bool:
    """True on a CI machine (CI=true), where a missing PostgreSQL must fail the suite, never skip it."""
    return environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _version(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())
