"""`python app.py --workers N`: N app processes on one host behind nginx, sharing one database.

A battle lives in the memory of the process that started it, so nginx sends every request of one browser to the
same process (the `corral_node` cookie of deploy/nginx.conf, hashed consistently). The supervisor here prepares
what the processes share once (the default or demo models, the schema, the IP-hash salt), then starts the app
processes on loopback ports, nginx in front of them on the public address, and restarts a process that dies: the
new one has the same instance name, so it closes the battles its predecessor left open. Stored votes are never
touched by a restart; a vote in flight to a dying process fails with it and is not retried elsewhere (nginx does
not resend a POST that reached its server).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import logging
import multiprocessing
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from arena.settings import Settings

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
NGINX_PATHS = ("nginx", "/usr/sbin/nginx")
START_TIMEOUT_S = 600.0  # a worker loads its models before it listens
RESTART_DELAYS_S = (1.0, 2.0, 5.0, 10.0, 30.0)  # a worker that keeps dying waits longer each time
STABLE_AFTER_S = 60.0  # a worker that ran this long starts its restart count afresh
PR_SET_PDEATHSIG = 1  # Linux prctl option: the signal a child gets when its parent dies
NGINX_TEMP_KINDS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")  # nginx's temporary-file folders
CONFIG_EXIT = 2  # app.py's exit code for a configuration it cannot use: restarting would not help

_UPSTREAM = re.compile(r"^(?P<indent>[ \t]*)server 127\.0\.0\.1:\d+(?P<rest>[^;\n]*);[ \t]*\n", re.MULTILINE)
_LISTEN = re.compile(r"^(?P<indent>[ \t]*)listen [^;\n]+;", re.MULTILINE)
_HTTP = re.compile(r"^http \{\n", re.MULTILINE)


class WorkersError(Exception):
    """The workers cannot be started (the sentence says why)."""


def find_nginx(candidates: Sequence[str] = NGINX_PATHS) -> str | None:
    """The nginx program, or None when it is not installed."""
    for name in candidates:
        if found := shutil.which(name):
            return found
    return None


def listen_address(host: str, port: int) -> str:
    """nginx's `listen` value for a host and port (IPv6 addresses in brackets, all interfaces as a bare port)."""
    if host in ("", "0.0.0.0"):
        return str(port)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def nginx_config(template: str, *, listen: str, ports: Sequence[int], prefix: Path) -> str:
    """deploy/nginx.conf made to run as this host's proxy: its upstream servers are `ports` on loopback, it listens
    on `listen`, and it keeps its pid file, error log and temporary files under `prefix` (no access log: the
    voters' addresses are not written anywhere)."""
    servers = list(_UPSTREAM.finditer(template))
    if not servers or not _LISTEN.search(template) or not _HTTP.search(template):
        raise WorkersError(f"{NGINX_CONF} no longer has the upstream servers, listen line and http block to adapt")
    # max_fails=0: a worker on loopback that is down refuses at once, so every request tries its own worker first
    # and moves on only while it is down, instead of exiling it for fail_timeout after a few failures
    first = servers[0]
    lines = "".join(f"{first['indent']}server 127.0.0.1:{port} max_fails=0;\n" for port in ports)
    text = template[: first.start()] + lines + _UPSTREAM.sub("", template[first.start() :])
    text = _LISTEN.sub(lambda m: f"{m['indent']}listen {listen};", text, count=1)
    temp = "\n".join(f"    {kind}_temp_path {prefix / 'temp' / kind};" for kind in NGINX_TEMP_KINDS)
    local = f"    access_log off;\n{temp}\n"
    text = _HTTP.sub(lambda m: m.group(0) + local, text, count=1)
    return f"pid {prefix / 'nginx.pid'};\nerror_log {prefix / 'error.log'} warn;\n\n{text}"


def free_loopback_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answers(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts connections on host:port."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


@dataclass
class Worker:
    """One app process: its slot number, loopback port and instance name, and its current process."""

    number: int
    port: int
    instance: str
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    restarts: int = 0
    served: bool = False  # some process of this slot has answered on its port

    @property
    def alive(self) -> bool:
        """Whether its process is running."""
        return self.process is not None and self.process.poll() is None


@dataclass
class Supervisor:
    """Starts nginx and the workers, restarts a worker that dies, and stops them all."""

    command: Callable[[Worker], list[str]]  # the app.py command line of a worker
    env: dict[str, str]  # the environment every worker gets (its own instance name is added)
    workers: list[Worker]
    nginx: list[str]  # nginx's command line
    public: tuple[str, int]  # the address nginx listens on, for the readiness check
    clock: Callable[[], float] = time.monotonic
    proxy: subprocess.Popen[bytes] | None = None
    _pending: dict[int, float] = field(default_factory=dict)  # worker number -> when to start it again

    def start(self, stopping: Callable[[], bool] = lambda: False) -> bool:
        """Start every worker and nginx; True once all of them answer, False if `stopping()` came first
        (WorkersError if one cannot start)."""
        for worker in self.workers:
            self._spawn(worker)
        deadline = self.clock() + START_TIMEOUT_S
        for worker in self.workers:
            while not answers(worker.port):
                assert worker.process is not None
                if stopping():
                    return False
                if worker.process.poll() is not None:
                    raise WorkersError(f"worker {worker.number} exited with code {worker.process.returncode}")
                if self.clock() > deadline:
                    raise WorkersError(f"worker {worker.number} did not start within {START_TIMEOUT_S:.0f} s")
                time.sleep(0.2)
            worker.served = True
        self.proxy = self._popen(self.nginx, "nginx")
        host, port = self.public
        while not answers(port, "127.0.0.1" if host in ("", "0.0.0.0") else host):
            if stopping():
                return False
            if self.proxy.poll() is not None:
                raise WorkersError(f"nginx exited with code {self.proxy.returncode} (its error log says why)")
            time.sleep(0.1)
        return True

    def watch_once(self) -> None:
        """Restart the workers that died (after a growing delay); WorkersError when one cannot be used at all."""
        if self.proxy is not None and self.proxy.poll() is not None:
            raise WorkersError(f"nginx exited with code {self.proxy.returncode}")
        now = self.clock()
        for worker in self.workers:
            if worker.process is None:
                continue
            if worker.alive:
                if not worker.served and answers(worker.port):
                    worker.served = True
                continue
            code = worker.process.returncode
            if code == CONFIG_EXIT and not worker.served:  # later, exit code 2 may be a passing cause (a database
                # that is restarting, its port taken meanwhile): the slot is started again like any other
                raise WorkersError(f"worker {worker.number} cannot start with this configuration (exit code 2)")
            if worker.number not in self._pending:
                if now - worker.started > STABLE_AFTER_S:
                    worker.restarts = 0
                delay = RESTART_DELAYS_S[min(worker.restarts, len(RESTART_DELAYS_S) - 1)]
                log.warning("worker %d exited with code %s; starting it again in %.0f s", worker.number, code, delay)
                self._pending[worker.number] = now + delay
            elif now >= self._pending[worker.number]:
                del self._pending[worker.number]
                worker.restarts += 1
                self._spawn(worker)

    def run(self, stopping: Callable[[], bool], poll_s: float = 0.5) -> None:
        """Watch the workers until `stopping()` says so."""
        while not stopping():
            self.watch_once()
            time.sleep(poll_s)

    def stop(self, timeout: float = 20.0) -> None:
        """Stop nginx and the workers (terminated, killed after `timeout` seconds)."""
        running = [p for p in (self.proxy, *(w.process for w in self.workers)) if p is not None and p.poll() is None]
        if running:
            log.info("stopping nginx and the workers (%d processes)", len(running))
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in running:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def _spawn(self, worker: Worker) -> None:
        env = {**self.env, "CORRAL_INSTANCE": worker.instance, "CORRAL_WORKER": str(worker.number)}
        worker.process = self._popen(self.command(worker), f"worker {worker.number}", env)
        worker.started = self.clock()
        log.info("worker %d: pid %d on 127.0.0.1:%d", worker.number, worker.process.pid, worker.port)

    @staticmethod
    def _popen(command: list[str], name: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        # In a process group of its own: Ctrl-C in a terminal reaches only the supervisor, which stops the others
        # in order (instead of every process printing its own KeyboardInterrupt).
        try:
            return subprocess.Popen(command, cwd=ROOT, env=env, preexec_fn=die_with_parent, process_group=0)
        except OSError as exc:
            raise WorkersError(f"{name} cannot be started: {exc.strerror or exc}") from None


def die_with_parent() -> None:
    """In a child, before it runs: ask Linux to send it SIGTERM when the supervisor dies (even by SIGKILL), so no
    worker or nginx is left holding its port. Elsewhere, nothing."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def prepare_in_child(
    prepare: Callable[[argparse.Namespace, Settings], str | None],
    args: argparse.Namespace,
    settings: Settings,
    *,
    stopping: Callable[[], bool],
) -> str | None:
    """Run `prepare(args, settings)` in a spawned child (converting the default model loads torch and transformers,
    which the supervisor should not keep in memory); its sentence of what went wrong, or None. Stops the child
    when `stopping()` says so, and the child ends with the supervisor."""
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_prepare_child, args=(prepare, args, settings, send), name="corral-prepare")
    child.start()
    send.close()
    try:
        while not receive.poll(0.2):
            if stopping():
                child.terminate()
                return None
            if not child.is_alive() and not receive.poll():
                return f"preparing the shared parts ended with exit code {child.exitcode} (the log above says why)"
        result: str | None = receive.recv()
        return result
    except EOFError:
        return "preparing the shared parts ended without a result (the log above says why)"
    finally:
        child.join(timeout=30)
        receive.close()


def _prepare_child(
    prepare: Callable[[argparse.Namespace, Settings], str | None],
    args: argparse.Namespace,
    settings: Settings,
    send: Connection,
) -> None:
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the supervisor's to handle: it stops this child
    try:
        result = prepare(args, settings)
    except Exception:  # the operator's log gets the traceback; the supervisor prints one sentence
        log.exception("preparing the shared parts failed")
        result = "preparing the shared parts failed (the log above says why)"
    send.send(result)
    send.close()


def plan_workers(count: int, instance: str) -> list[Worker]:
    """`count` worker slots on free loopback ports, named after this deployment's instance name."""
    return [Worker(number=i, port=free_loopback_port(), instance=f"{instance}/worker-{i}") for i in range(1, count + 1)]


def nginx_command(nginx: str, prefix: Path, conf: Path, *, test: bool = False) -> list[str]:
    """nginx in the foreground with its own prefix, config and error log (it never reads /etc/nginx); with
    `test`, only check the config."""
    command = [nginx, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")]
    return [*command, "-t", "-q"] if test else [*command, "-g", "daemon off;"]


def write_nginx_files(prefix: Path, *, listen: str, ports: Sequence[int]) -> Path:
    """Write the proxy's config under `prefix` (made with its temp folders); returns the config's path."""
    for kind in NGINX_TEMP_KINDS:
        (prefix / "temp" / kind).mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    text = nginx_config(NGINX_CONF.read_text(encoding="utf-8"), listen=listen, ports=ports, prefix=prefix)
    conf.write_text(text, encoding="utf-8")
    return conf


def check_nginx(nginx: str, prefix: Path, conf: Path) -> None:
    """`nginx -t` on the written config; WorkersError with nginx's own complaint when it fails."""
    result = subprocess.run(nginx_command(nginx, prefix, conf, test=True), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if "emerg" in line or "alert" in line]
        reason = lines[0].split("] ", 1)[-1] if lines else f"exit code {result.returncode}"
        raise WorkersError(f"nginx refuses the proxy config {conf}: {reason}")
