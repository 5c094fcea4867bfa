"""Server processes on loopback, for the benchmarks and the tests alike: a free port, waiting until a process
answers, and stopping it. (The tests import these from here: benchmarks never import the tests.)"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from arena.workers import answers, free_loopback_port

ROOT = Path(__file__).resolve().parents[1]


free_port = free_loopback_port  # a TCP port free on 127.0.0.1 right now


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
        if answers(port):
            return
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"process did not start within {timeout} s:\n{log.read_text()[-3000:]}")


@dataclass
class RunningApp(Process):
    """An app.py process serving on loopback, with its database."""

    db_url: str = ""


@dataclass(frozen=True)
class AppLaunch:
    """What starting app.py in a folder takes: its config file written there, a free port, its database."""

    workdir: Path
    config_file: Path
    port: int
    db_url: str
    log_name: str = "app.log"

    @classmethod
    def of(
        cls, config: dict[str, Any], workdir: Path, db_url: str | None = None, log_name: str = "app.log"
    ) -> AppLaunch:
        """Write `config` into `workdir` and pick a port; the database defaults to a SQLite file there."""
        workdir.mkdir(parents=True, exist_ok=True)
        config_file = workdir / "config.yaml"
        config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
        url = db_url or f"sqlite:///{workdir / 'corral.db'}"
        return cls(workdir, config_file, free_port(), url, log_name)

    @property
    def url(self) -> str:
        """Where the app will answer."""
        return f"http://127.0.0.1:{self.port}/"

    @property
    def log(self) -> Path:
        """The file its output goes to."""
        return self.workdir / self.log_name

    def command(self) -> list[str]:
        """app.py's command line."""
        cmd = [sys.executable, str(ROOT / "app.py"), "--config", str(self.config_file), "--port", str(self.port)]
        return [*cmd, "--db", self.db_url, "--data-dir", str(self.workdir), "--threads", "1"]

    @staticmethod
    def env(extra: dict[str, str] | None = None) -> dict[str, str]:
        """The environment: this one, a fixed IP-hash salt, unbuffered output, and `extra`."""
        fixed = {"CORRAL_IP_SALT": "test-salt-0123456789abcdef", "PYTHONUNBUFFERED": "1"}
        return {**os.environ, **fixed, **(extra or {})}

    def running(self, process: subprocess.Popen[bytes]) -> RunningApp:
        """The started app."""
        return RunningApp(url=self.url, process=process, log=self.log, db_url=self.db_url)


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
        launch = AppLaunch.of(config, workdir, db_url)
        with launch.log.open("wb") as out:
            proc = subprocess.Popen(
                launch.command(), cwd=ROOT, env=launch.env(env), stdout=out, stderr=subprocess.STDOUT
            )
        launched.append((launch.running(proc), launch.port))
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
        return {number: pid for number, (pid, _) in self._workers().items()}

    def worker_ports(self) -> dict[int, int]:
        """The loopback port of each worker, from the supervisor's log."""
        return {number: port for number, (_, port) in self._workers().items()}

    def _workers(self) -> dict[int, tuple[int, int]]:
        found: dict[int, tuple[int, int]] = {}
        for line in self.log.read_text(encoding="utf-8", errors="replace").splitlines():
            if (match := _WORKER_LINE.search(line)) is not None:
                found[int(match["number"])] = (int(match["pid"]), int(match["port"]))
        return found


_WORKER_LINE = re.compile(r"worker (?P<number>\d+): pid (?P<pid>\d+) on 127\.0\.0\.1:(?P<port>\d+)")


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
    launch = AppLaunch.of(config, workdir, db_url)
    with launch.log.open("ab") as out:
        proc = subprocess.Popen(
            [*launch.command(), "--workers", str(count)],
            cwd=ROOT,
            env=launch.env(env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    running = RunningWorkers(url=launch.url, process=proc, log=launch.log, db_url=launch.db_url)
    try:
        wait_for_port(proc, launch.port, launch.log, timeout)
    except RuntimeError:
        running.stop()
        raise
    return running
