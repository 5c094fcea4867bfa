"""What the streaming benchmarks share: the machine, processes on loopback, a Gradio queue client, a direct TGI client.

The Gradio client speaks the browser's protocol (the one gradio_client speaks too): `POST /gradio_api/queue/join`
then read `GET /gradio_api/queue/data?session_hash=…` as server-sent events, applying the diffs of
`process_generating` messages with gradio_client's own `apply_diff`. It is async, so hundreds of battles can
run from one process without threads, and it timestamps each message when it arrives (gradio_client's job
iterator polls every 50 ms, which would blur a time to first token).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import platform
import ssl
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from gradio_client.utils import apply_diff

from arena.text import shows_error
from benchmarks.processes import Process, RunningApp, free_port, start_app, start_workers, wait_for_port

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PLACEHOLDER = "…"  # what a pane shows before its first token (arena.ui.common.shown)


def machine() -> dict[str, Any]:
    """Cores, RAM, CPU model, Python and the date: stated with every figure."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cores": os.cpu_count(),
        "ram_gib": round(ram_gib, 1),
        "cpu": cpu,
        "gpu": "none",
        "python": platform.python_version(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def save(name: str, result: dict[str, Any]) -> Path:
    """Write benchmarks/results/<name>.json atomically."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(path)
    return path


def pct(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100, inclusive method), or None for no values."""
    if not values:
        return None
    if len(values) == 1:
        return float(values[0])
    return float(statistics.quantiles(sorted(values), n=100, method="inclusive")[int(q) - 1])


def ms(value: float | None) -> float | None:
    """Seconds to milliseconds, rounded to 0.1 ms."""
    return None if value is None else round(value * 1000, 1)


def start_synthetic(workdir: Path, *, ttft_ms: float, tokens_per_s: float) -> Process:
    """Start the synthetic TGI server in its own process."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = workdir / f"synthetic-{port}.log"
    cmd = [sys.executable, "-m", "benchmarks.synthetic_tgi", "--port", str(port)]
    cmd += ["--ttft-ms", str(ttft_ms), "--tokens-per-s", str(tokens_per_s)]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    wait_for_port(proc, port, log, timeout=60)
    return Process(url=f"http://127.0.0.1:{port}", process=proc, log=log)


def arena_config(backend_url: str, tokens: dict[str, int], *, concurrency_limit: int) -> dict[str, Any]:
    """An app config with one `tgi` model per entry of `tokens` (name -> max_new_tokens), all on `backend_url`."""
    models = [
        {
            "name": name,
            "backend": "tgi",
            "endpoints": [backend_url],
            "template": "chatml",
            "max_concurrent_per_endpoint": 1024,
            "health_interval": 30,
            "generation": {"max_new_tokens": count, "temperature": 0.7, "top_p": 0.95},
        }
        for name, count in tokens.items()
    ]
    arena = {
        "concurrency_limit": concurrency_limit,
        "max_turns": 8,
        "limits": {"messages_per_minute": 0, "votes_per_hour": 0},  # every client is 127.0.0.1
        "languages": ["English", "French"],
    }
    return {"arena": arena, "models": models}


def start_arena(config: dict[str, Any], workdir: Path, *, workers: int = 1) -> RunningApp:
    """app.py as a real process (the same helper the tests use); with `workers` > 1, `app.py --workers N`
    (that many app processes behind nginx)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("GRADIO_RUN_HISTORY", "False")
    if workers > 1:
        return start_workers(config, workdir, workers, timeout=300)
    return start_app(config, workdir, timeout=180)


def text_of(message: dict[str, Any]) -> str:
    """The text of a Chatbot message (a string, or a list of parts)."""
    content = message["content"]
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


def pane_text(value: Any) -> str:
    """The last assistant message of a Chatbot value, without the streaming placeholder."""
    if not value or not isinstance(value, list):
        return ""
    last = value[-1]
    if not isinstance(last, dict) or last.get("role") != "assistant":
        return ""
    text = text_of(last)
    return "" if text == PLACEHOLDER else text


def count_tokens(text: str) -> int:
    """Tokens in a synthetic answer (each token is one word)."""
    return len(text.split())


@dataclass
class SideTrace:
    """What a client saw of one pane (or one direct stream): when text arrived and how much."""

    first: float | None = None  # seconds from the request
    updates: list[tuple[float, int]] = field(default_factory=list)  # (seconds, tokens shown so far)
    tokens: int = 0

    def see(self, at: float, tokens: int) -> None:
        """Record the pane at `at` showing `tokens` tokens (only changes count)."""
        if tokens <= self.tokens:
            return
        if self.first is None:
            self.first = at
        self.updates.append((at, tokens))
        self.tokens = tokens

    def gaps(self) -> list[float]:
        """Seconds between successive updates that added text."""
        times = [t for t, _ in self.updates]
        return [b - a for a, b in itertools.pairwise(times)]

    @property
    def last(self) -> float | None:
        """When the last text arrived."""
        return self.updates[-1][0] if self.updates else None


@dataclass
class BattleTrace:
    """One battle seen through the app: both panes, the wall time, and what went wrong."""

    sides: tuple[SideTrace, SideTrace] = field(default_factory=lambda: (SideTrace(), SideTrace()))
    wall: float | None = None
    error: str | None = None
    texts: tuple[str, str] = ("", "")
    voted: bool = False


class GradioQueueClient:
    """Drives named Gradio events over the queue's HTTP + server-sent-events path, one session per call."""

    def __init__(self, url: str, http: httpx.AsyncClient) -> None:
        """A client of the app at `url` (ends with /); call `connect` once before use."""
        self.url = url.rstrip("/")
        self.http = http
        self.fn: dict[str, int] = {}
        self.prefix = "/gradio_api"

    async def connect(self) -> None:
        """Read the app's config: the id of every named event."""
        r = await self.http.get(f"{self.url}/config")
        r.raise_for_status()
        config = r.json()
        self.prefix = "/" + str(config.get("api_prefix", "/gradio_api")).strip("/")
        for i, dep in enumerate(config["dependencies"]):
            if dep.get("api_name"):
                self.fn[str(dep["api_name"])] = int(dep.get("id", i))

    async def call(
        self,
        api_name: str,
        data: list[Any],
        session: str,
        trace: BattleTrace | None = None,
        start: float | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> list[Any]:
        """Run one event to completion; with `trace`, timestamp every change of the two panes (outputs 0, 1)."""
        start = time.perf_counter() if start is None else start
        http = http or self.http
        body = {"data": data, "fn_index": self.fn[api_name], "session_hash": session, "event_data": None}
        r = await http.post(f"{self.url}{self.prefix}/queue/join", json=body)
        r.raise_for_status()
        event_id = r.json()["event_id"]
        outputs: list[Any] | None = None
        url = f"{self.url}{self.prefix}/queue/data"
        async with http.stream("GET", url, params={"session_hash": session}) as resp:
            resp.raise_for_status()
            async for line in resp.aiter_lines():
                if not line.startswith("data:"):
                    continue
                msg = json.loads(line[5:])
                at = time.perf_counter() - start
                kind = msg.get("msg")
                if kind in ("heartbeat", "close_stream") or msg.get("event_id") != event_id:
                    if kind == "close_stream":
                        break
                    continue
                if kind == "process_generating":
                    out = msg["output"]["data"]
                    outputs = (
                        list(out) if outputs is None else [apply_diff(o, d) for o, d in zip(outputs, out, strict=True)]
                    )
                    if trace is not None:
                        for side in (0, 1):
                            trace.sides[side].see(at, count_tokens(pane_text(outputs[side])))
                elif kind == "process_completed":
                    if not msg.get("success", True):
                        raise RuntimeError(f"{api_name} failed: {msg.get('output')}")
                    final = list(msg["output"]["data"])
                    if trace is not None:
                        for side in (0, 1):
                            trace.sides[side].see(at, count_tokens(pane_text(final[side])))
                    return final
        raise RuntimeError(f"{api_name}: the event stream ended before the event completed")

    async def battle(self, question: str, *, vote: str | None = "battle_vote_tie") -> BattleTrace:
        """One anonymous battle in a new session (its own connections, as a browser): send, stream, vote."""
        trace = BattleTrace()
        session = uuid.uuid4().hex[:11]
        start = time.perf_counter()
        try:
            async with own_client() as http:
                final = await self.call("battle_send", [question, None], session, trace, start, http)
                trace.wall = time.perf_counter() - start
                trace.texts = (pane_text(final[0]), pane_text(final[1]))
                if shows_error(trace.texts[0]) or shows_error(trace.texts[1]):
                    trace.error = "a pane shows an error"
                    return trace
                if vote is None:
                    return trace
                voted = await self.call(vote, [None], session, http=http)
                trace.voted = str(voted[3]).startswith("Thanks")
                if not trace.voted:
                    trace.error = f"vote refused: {voted[3]}"
        except (httpx.HTTPError, RuntimeError, KeyError, ValueError) as exc:
            trace.error = f"{type(exc).__name__}: {exc}"
        return trace


async def direct_stream(url: str, max_new_tokens: int) -> SideTrace:
    """Read one answer straight from the (synthetic) TGI server's /generate_stream, on its own connection."""
    trace = SideTrace()
    body = {"inputs": "<|im_start|>user\nHello<|im_end|>\n", "parameters": {"max_new_tokens": max_new_tokens}}
    start = time.perf_counter()
    tokens = 0
    async with own_client() as http, http.stream("POST", f"{url}/generate_stream", json=body) as resp:
        resp.raise_for_status()
        async for line in resp.aiter_lines():
            if line.startswith("data:"):
                event = json.loads(line[5:])
                if "token" in event:
                    tokens += 1
                    trace.see(time.perf_counter() - start, tokens)
    return trace


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants alive now (from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def tree_cpu_seconds(pids: Sequence[int]) -> float:
    """The user + system CPU seconds of several processes, from /proc (each one gone counts 0)."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (psutil, else /proc)."""
    try:
        import psutil  # type: ignore[import-untyped]

        times = psutil.Process(pid).cpu_times()
        return float(times.user + times.system)
    except ImportError:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


_SSL = ssl.create_default_context()


def own_client() -> httpx.AsyncClient:
    """A small client per battle or stream: one shared httpx pool with hundreds of live streams spends its time
    rescanning its connections (httpcore), which would be measured as the app's latency."""
    return httpx.AsyncClient(timeout=300, verify=_SSL)


@dataclass
class Rig:
    """A synthetic TGI server, app.py on top of it, and a Gradio queue client connected to the app."""

    synthetic: Process
    app: RunningApp
    http: httpx.AsyncClient
    client: GradioQueueClient


@asynccontextmanager
async def arena_rig(
    workdir: Path,
    *,
    ttft_ms: float,
    tokens_per_s: float,
    tokens: dict[str, int],
    concurrency_limit: int,
    workers: int = 1,
) -> AsyncIterator[Rig]:
    """Start the synthetic server and the app (one `tgi` model per entry of `tokens`; `workers` app processes
    behind nginx when more than 1), connect; stop both after."""
    syn = start_synthetic(workdir, ttft_ms=ttft_ms, tokens_per_s=tokens_per_s)
    config = arena_config(syn.url, tokens, concurrency_limit=concurrency_limit)
    app = start_arena(config, workdir / "app", workers=workers)
    try:
        async with own_client() as http:
            client = GradioQueueClient(app.url, http)
            await client.connect()
            yield Rig(syn, app, http, client)
    finally:
        app.stop()
        syn.stop()
