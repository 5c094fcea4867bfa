"""Server processes on loopback, for the benchmarks and the tests alike: a free port, waiting until a process
answers, and stopping it. (The tests import these from here: benchmarks never import the tests.)"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Process:
    """A server process on loopback."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self, timeout: float = 15) -> None:
        """Terminate the process and wait for it (killed after `timeout` seconds)."""
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def wait_for_port(proc: subprocess.Popen[bytes], port: int, log: Path, timeout: float = 120) -> None:
    """Wait until `proc` accepts connections on `port`; fail with its log if it exits or takes too long."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"process did not start within {timeout} s:\n{log.read_text()[-3000:]}")


@dataclass
class RunningApp(Process):
    """An app.py process serving on loopback, with its database."""

    db_url: str = ""


def start_app(
    config: dict[str, Any], workdir: Path, *, timeout: float = 120, env: dict[str, str] | None = None
) -> RunningApp:
    """Write `config` to a file and start app.py on a free port (with `env` added); wait until it answers."""
    [app] = start_apps(config, [workdir], timeout=timeout, env=env)
    return app


def start_apps(
    config: dict[str, Any],
    workdirs: list[Path],
    *,
    db_url: str | None = None,
    timeout: float = 120,
    env: dict[str, str] | None = None,
) -> list[RunningApp]:
    """Start one app.py per folder at the same moment, on `db_url` (default: a SQLite file in each folder).

    Waits until every one answers; if one fails to start, the others are stopped and its log is raised.
    """
    launched: list[tuple[RunningApp, int]] = []
    for workdir in workdirs:
        workdir.mkdir(parents=True, exist_ok=True)
        config_file = workdir / "config.yaml"
        config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
        port = free_port()
        url = db_url or f"sqlite:///{workdir / 'corral.db'}"
        log = workdir / "app.log"
        extra = {"CORRAL_IP_SALT": "test-salt-0123456789abcdef", "PYTHONUNBUFFERED": "1", **(env or {})}
        process_env = {**os.environ, **extra}
        cmd = [sys.executable, str(ROOT / "app.py"), "--config", str(config_file), "--port", str(port)]
        cmd += ["--db", url, "--data-dir", str(workdir), "--threads", "1"]
        with log.open("wb") as out:
            proc = subprocess.Popen(cmd, cwd=ROOT, env=process_env, stdout=out, stderr=subprocess.STDOUT)
        launched.append((RunningApp(url=f"http://127.0.0.1:{port}/", process=proc, log=log, db_url=url), port))
    try:
        for app, port in launched:
            wait_for_port(app.process, port, app.log, timeout)
    except RuntimeError:
        for app, _ in launched:
            app.stop()
        raise
    return [app for app, _ in launched]


@dataclass
class RunningWorkers(RunningApp):
    """`app.py --workers N`: the supervisor process; `url` is nginx's, and the log holds every process's lines."""

    def worker_pids(self) -> dict[int, int]:
        """The current pid of each worker, from the supervisor's log (a restarted worker's newest)."""
        pids: dict[int, int] = {}
        for line in self.log.read_text(encoding="utf-8", errors="replace").splitlines():
            if (found := _WORKER_LINE.search(line)) is not None:
                pids[int(found["number"])] = int(found["pid"])
        return pids


_WORKER_LINE = re.compile(r"worker (?P<number>\d+): pid (?P<pid>\d+) on ")


def start_workers(
    config: dict[str, Any],
    workdir: Path,
    count: int,
    *,
    db_url: str | None = None,
    timeout: float = 300,
    env: dict[str, str] | None = None,
) -> RunningWorkers:
    """`app.py --workers count` over `config` on a free port; wait until its proxy answers (after every worker)."""
    workdir.mkdir(parents=True, exist_ok=True)
    config_file = workdir / "config.yaml"
    config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    port = free_port()
    url = db_url or f"sqlite:///{workdir / 'corral.db'}"
    log = workdir / "app.log"
    extra = {"CORRAL_IP_SALT": "test-salt-0123456789abcdef", "PYTHONUNBUFFERED": "1", **(env or {})}
    cmd = [sys.executable, str(ROOT / "app.py"), "--config", str(config_file), "--port", str(port)]
    cmd += ["--db", url, "--data-dir", str(workdir), "--threads", "1", "--workers", str(count)]
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **extra}, stdout=out, stderr=subprocess.STDOUT)
    running = RunningWorkers(url=f"http://127.0.0.1:{port}/", process=proc, log=log, db_url=url)
    try:
        wait_for_port(proc, port, log, timeout)
    except RuntimeError:
        running.stop()
        raise
    return running
