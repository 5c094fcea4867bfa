"""Faults for tests: a scripted misbehaving HTTP server, and real processes and file systems broken on purpose.

FaultServer is a real server on 127.0.0.1 speaking raw HTTP/1.1 over asyncio, so clients go through their whole
real network path; only its behaviour is scripted. The rest kills, stalls, locks and fills real things: server
processes (SIGKILL, SIGSTOP), a SQLite file locked by another process, a tmpfs that is full or read-only.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backends.demo import DemoModels
from benchmarks.processes import AppLaunch
from tests.support.helpers import ROOT, Process, RunningApp, wait_for_port

EVENT: dict[str, Any] = {
    "index": 1,
    "token": {"id": 5, "text": "Hi", "logprob": -0.1, "special": False},
    "generated_text": None,
}


@dataclass
class FaultServer:
    """Serves one behaviour (`mode`) for every POST; GET /health answers `health_status`."""

    mode: str = "ok"
    text: str = "Hi"  # what mode "ok" streams, one word per token
    health_status: int = 200
    models: tuple[str, ...] = ("m",)  # what GET /v1/models lists
    models_status: int | None = None  # what GET /v1/models answers (None: as /health)
    models_delay: float = 0.0  # seconds GET /v1/models waits first (a single-slot server busy answering)
    usage_tokens: int | None = None  # mode "ok" on the chat route: the completion_tokens its usage chunk reports
    port: int = 0
    seen_headers: list[dict[str, str]] = field(default_factory=list)
    seen_bodies: list[Any] = field(default_factory=list)  # the JSON body of every POST
    _loop: asyncio.AbstractEventLoop | None = None
    _server: asyncio.AbstractServer | None = None

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultServer:
        """Start serving on a background thread."""
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", self.port))
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()

        threading.Thread(target=run, daemon=True).start()
        ready.wait(5)
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        if self._loop is None or self._server is None:
            return
        loop, server = self._loop, self._server

        async def close() -> None:
            server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(close(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            lines = head.split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
            self.seen_headers.append(headers)
            length = int(headers.get("content-length", "0"))
            body = json.loads(await reader.readexactly(length)) if length else None
            if method == "GET":
                await self._get(path, writer)
            else:
                self.seen_bodies.append(body)
                await self._post(writer, path, body)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _get(self, path: str, writer: asyncio.StreamWriter) -> None:
        if path.startswith("/health"):
            await _respond(writer, self.health_status, b"" if self.health_status == 200 else b'{"error":"unhealthy"}')
        elif path.startswith("/v1/models"):
            await asyncio.sleep(self.models_delay)
            listing = {"object": "list", "data": [{"id": m} for m in self.models]}
            status = self.health_status if self.models_status is None else self.models_status
            await _respond(writer, status, json.dumps(listing).encode() if status == 200 else b"Internal Server Error")
        else:
            await _respond(writer, 404, b"{}")

    async def _post(self, writer: asyncio.StreamWriter, path: str, body: Any) -> None:
        streamed = isinstance(body, dict) and bool(body.get("stream"))
        if self.mode in ("silent_overflow", "empty_stream") and streamed:  # 200, then no event at all
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n")
            await writer.drain()
        elif self.mode == "silent_overflow":  # llama.cpp's server: only a request without streaming hears why
            await _respond(writer, 400, json.dumps(LLAMA_CPP_OVERFLOW).encode())
        elif self.mode == "empty_stream":  # the same request without streaming is answered
            choice = {"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "length"}
            whole = {**CHAT_CHUNK, "object": "chat.completion", "choices": [choice]}
            await _respond(writer, 200, json.dumps(whole).encode())
        elif self.mode == "unknown_model":  # a server that checks names (vLLM, Ollama, OpenAI)
            await _respond(writer, 404, json.dumps({"error": {"message": "model 'm' not found"}}).encode())
        elif self.mode == "validation_500":  # llama.cpp's server: an invalid request gets 500 and the reason
            await _respond(writer, 500, json.dumps(LLAMA_CPP_INVALID).encode())
        elif path.startswith("/v1/chat/completions") and self.mode == "ok":
            await self._chat_stream(writer)
        elif self.mode == "hang":
            await asyncio.sleep(3600)
        elif self.mode == "validation":
            body = {
                "error": "Input validation error: `inputs` must have less than 10 tokens. Given: 99",
                "error_type": "validation",
            }
            await _respond(writer, 422, json.dumps(body).encode())
        elif self.mode == "http429":
            await _respond(
                writer, 429, json.dumps({"error": "Model is overloaded", "error_type": "overloaded"}).encode()
            )
        else:
            await self._stream(writer)

    async def _stream(self, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n")
        if self.mode == "overloaded_event":
            writer.write(_event({"error": "Model is overloaded", "error_type": "overloaded"}))
        elif self.mode == "malformed":
            writer.write(b"data: {not json\n\n")
        elif self.mode in ("die_mid_stream", "stall_mid_stream"):
            for _ in range(2):
                writer.write(_event(EVENT))
                await writer.drain()
                await asyncio.sleep(0.05)
            if self.mode == "stall_mid_stream":
                await asyncio.sleep(3600)
            writer.transport.abort()  # the process died: the connection drops with no final event
            return
        else:
            words = [w + " " for w in self.text.split(" ")]
            words[-1] = words[-1].rstrip(" ")
            for i, word in enumerate(words, start=1):
                last = i == len(words)
                event = {**EVENT, "index": i, "token": {**EVENT["token"], "text": word}}
                if last:
                    event.update(generated_text=self.text, details={"finish_reason": "length", "generated_tokens": i})
                writer.write(_event(event))
        await writer.drain()

    async def _chat_stream(self, writer: asyncio.StreamWriter) -> None:
        """OpenAI-style chunks, one word each, a finish reason, then (if set) a usage chunk, then [DONE]."""
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n")
        words = self.text.split(" ")
        for i, word in enumerate(words):
            last = i == len(words) - 1
            delta = {"content": word if last else word + " "}
            writer.write(_event({**CHAT_CHUNK, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}))
            if last:
                writer.write(_event({**CHAT_CHUNK, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
        if self.usage_tokens is not None:
            usage = {"prompt_tokens": 3, "completion_tokens": self.usage_tokens, "total_tokens": 3 + self.usage_tokens}
            writer.write(_event({**CHAT_CHUNK, "choices": [], "usage": usage}))
        writer.write(b"data: [DONE]\n\n")
        await writer.drain()


CHAT_CHUNK: dict[str, Any] = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m"}
LLAMA_CPP_OVERFLOW = {  # as llama-cpp-python 0.3.36 answers a prompt longer than its context, without streaming
    "error": {
        "message": "This model's maximum context length is 512 tokens. However, you requested 1595 tokens (1531 in "
        "the messages, 64 in the completion). Please reduce the length of the messages or completion.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded",
    }
}
LLAMA_CPP_INVALID = {  # as llama-cpp-python 0.3.36 answers `"top_p": -1` (its traceback's file line shortened)
    "error": {
        "message": "1 validation error:\n  {'type': 'greater_than_equal', 'loc': ('body', 'top_p'), 'msg': 'Input "
        "should be greater than or equal to 0', 'input': -1, 'ctx': {'ge': 0.0}}\n\n  File \"/venv/lib/python3.11/"
        'site-packages/llama_cpp/server/app.py", line 376, in create_chat_completion\n    POST /v1/chat/completions',
        "type": "internal_server_error",
        "param": None,
        "code": None,
    }
}


def _event(payload: Any) -> bytes:
    return f"data: {json.dumps(payload)}\n\n".encode()


async def _respond(writer: asyncio.StreamWriter, status: int, body: bytes) -> None:
    reason = {200: "OK", 404: "Not Found", 422: "Unprocessable Entity", 429: "Too Many Requests"}.get(status, "Error")
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        "connection: close\r\n\r\n".encode()
        + body
    )
    await writer.drain()


# --- faults made with real processes and real file systems ------------------------------------------------------


@dataclass
class FaultLog:
    """Counts the faults a test module injects, so the suite can state how many it survived."""

    injected: list[str] = field(default_factory=list)

    def inject(self, what: str) -> None:
        """Record one fault, just before it is made."""
        self.injected.append(what)


def serve_on(demo: DemoModels, workdir: Path, port: int) -> Process:
    """`python -m backends.serve` with the demo base and both adapters on a given port (to restart it there)."""
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / f"serve-{port}-{int(time.time() * 1000)}.log"
    cmd = [sys.executable, "-m", "backends.serve", "--model", str(demo.base), "--port", str(port), "--threads", "1"]
    for name, path in demo.adapters.items():
        cmd += ["--adapter", f"{name}={path}"]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    wait_for_port(proc, port, log)
    return Process(url=f"http://127.0.0.1:{port}", process=proc, log=log)


def launch_app(
    config: dict[str, Any],
    workdir: Path,
    *,
    db_url: str | None = None,
    env: dict[str, str] | None = None,
    log_name: str = "app.log",
) -> RunningApp:
    """app.py on a free port with `workdir` as its data folder; the same workdir again is the same instance."""
    launch = AppLaunch.of(config, workdir, db_url, log_name)
    with launch.log.open("ab") as out:
        proc = subprocess.Popen(launch.command(), cwd=ROOT, env=launch.env(env), stdout=out, stderr=subprocess.STDOUT)
    wait_for_port(proc, launch.port, launch.log)
    return launch.running(proc)


def sigkill(process: Process) -> None:
    """Kill a process the hard way (no cleanup, no flush) and reap it."""
    process.process.send_signal(signal.SIGKILL)
    process.process.wait(timeout=30)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 120) -> None:
    """Poll `condition` until it holds; fail naming `what` if it never does (a deadline, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {timeout} s")


class SqliteLock:
    """Another process holding the write lock of a SQLite file (BEGIN IMMEDIATE) until released."""

    SCRIPT = (
        "import sqlite3, sys\n"
        "conn = sqlite3.connect(sys.argv[1], timeout=60, isolation_level=None)\n"
        "conn.execute('BEGIN IMMEDIATE')\n"
        "print('locked', flush=True)\n"
        "sys.stdin.readline()\n"
        "conn.execute('ROLLBACK')\n"
    )

    def __init__(self, path: Path) -> None:
        """Take the lock; return once it is held."""
        self.proc = subprocess.Popen(
            [sys.executable, "-c", self.SCRIPT, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == b"locked"

    def release(self) -> None:
        """Give the lock back and let the holder exit."""
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.write(b"\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=30)


class CannotMount(Exception):
    """This machine does not let the tests mount a file system (not root, or no CAP_SYS_ADMIN)."""


@contextmanager
def small_filesystem(path: Path, size: str = "16m") -> Iterator[Path]:
    """A size-limited tmpfs mounted at `path` (needs root); unmounted afterwards."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        raise CannotMount(f"mounting a tmpfs needs root; running as uid {os.geteuid()}")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        raise CannotMount(f"mount -t tmpfs failed: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def remount(path: Path, mode: str) -> None:
    """Remount the tmpfs at `path` read-only ("ro") or read-write ("rw")."""
    subprocess.run(["mount", "-o", f"remount,{mode}", str(path)], check=True)


def fill_disk(folder: Path) -> Path:
    """Write a file into `folder` until its file system has not one byte left; returns the file."""
    filler = folder / "filler.bin"
    with filler.open("wb", buffering=0) as f:
        for chunk in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    f.write(b"\0" * chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
    return filler
