"""Inference servers Corral did not write (and its own `backends.serve`), started on loopback with the real default
model, so the `openai` and `tgi` backend kinds are tested against real peers.

Each peer is one row of `PEERS`: how to start it on a port and which Corral `models:` entry reaches it. The facts
about each server that the code relies on are stated where they are used.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

from benchmarks.processes import Process, free_port

ROOT = Path(__file__).resolve().parents[2]
LLAMA_VENV = ROOT / ".venv-llama-cpp"  # its own virtual environment: `make llama-cpp` builds it
LLAMA_CPP_VERSION = "0.3.36"
DEFAULT_CONTEXT = 512  # tokens: small, so a prompt that does not fit is quick to build and to refuse
START_TIMEOUT = 120.0


class PeerUnavailable(Exception):
    """A peer's software is not installed on this machine; the message says how to install it."""


class PeerStartError(RuntimeError):
    """A peer exited or did not answer in time; the message ends with the tail of its log."""


@dataclass
class Peer:
    """A running peer server and the Corral `models:` entry that reaches it."""

    name: str  # the peer's id: "transformers", "llama-cpp" or "corral-serve"
    url: str  # base URL, no trailing slash
    model: str  # the model name requests send (and the `model` key of an `openai` entry)
    config: dict[str, Any]  # the entry's `backend` kind and that kind's own keys
    context: int  # tokens: what the server was started with, or the model's own maximum when it enforces none
    context_enforced: bool  # False: the server runs prompts longer than `context` instead of refusing them
    served: Path  # the model folder or GGUF file it serves (a tokenizer for Corral's own length check)
    process: Process

    @property
    def backend(self) -> str:
        """The Corral backend kind of this peer's entry ("openai" or "tgi")."""
        return str(self.config["backend"])

    def entry(self, name: str, **keys: Any) -> dict[str, Any]:
        """A Corral `models:` entry named `name` for this peer; `keys` add to or override its keys."""
        return {"name": name, "endpoints": [self.url], **self.config, **keys}

    def alive(self) -> bool:
        """Whether the server process is still running."""
        return self.process.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the server (no clean shutdown, open streams cut) and reap it."""
        self.process.process.send_signal(signal.SIGKILL)
        self.process.process.wait()

    def stop(self) -> None:
        """Terminate the server and wait for it (killed if it lingers)."""
        self.process.stop()

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the server's log."""
        return _tail(self.process.log, chars)


@dataclass(frozen=True)
class Launch:
    """How one peer starts: its command line and environment, the route that answers 200 once it is ready."""

    cmd: list[str]
    ready_path: str
    model: str
    config: dict[str, Any]
    context: int
    context_enforced: bool
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PeerKind:
    """One row of `PEERS`: what a peer serves (a model folder or a GGUF file) and how it is launched."""

    serves: Literal["folder", "gguf"]
    launch: Callable[[Path, int, Path, int | None, int], Launch]  # (model, port, workdir, context, threads)


def transformers_serve(model_dir: Path, port: int, workdir: Path, context: int | None, threads: int) -> Launch:
    """`transformers serve FOLDER`: OpenAI-compatible, one preloaded model, requests served one at a time."""
    if context is not None:
        raise ValueError("transformers serve has no context limit to set (it runs any prompt length)")
    # GET /v1/models lists the Hugging Face cache, not the preloaded model, and answers 500 when the cache folder
    # is missing; an empty private cache makes it answer 200 with an empty list (and never lists the machine's).
    hub = workdir / "hf-home" / "hub"
    hub.mkdir(parents=True, exist_ok=True)
    env = {"HF_HOME": str(hub.parent), "HF_HUB_CACHE": str(hub), "OMP_NUM_THREADS": str(threads)}
    script = Path(sys.executable).with_name("transformers")
    cmd = [str(script), "serve", str(model_dir), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"]
    max_positions = int(json.loads((model_dir / "config.json").read_text(encoding="utf-8"))["max_position_embeddings"])
    return Launch(
        cmd=[*cmd, "--log-level", "info"],
        ready_path="/health",  # uvicorn starts only after the model has loaded
        model=str(model_dir),  # the path exactly as given on the command line; any other name is a 400
        # its profile: /v1/models never lists the preloaded model, and fields outside OpenAI's (top_k, ...) are a 422
        config={"backend": "openai", "model": str(model_dir), "server": "transformers"},
        context=max_positions,
        context_enforced=False,
        env=env,
    )


def llama_cpp_server(gguf: Path, port: int, workdir: Path, context: int | None, threads: int) -> Launch:
    """llama-cpp-python's server on the GGUF file, in its own virtual environment."""
    n_ctx = context or DEFAULT_CONTEXT
    cmd = [str(llama_cpp_python()), "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", "smollm2"]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx)]
    cmd += ["--n_threads", str(threads), "--n_threads_batch", str(threads)]
    # the default (True) ends a running stream, without a finish reason, whenever any other request arrives
    cmd += ["--interrupt_requests", "False"]
    return Launch(
        cmd=cmd,
        ready_path="/v1/models",  # it has no /health (404)
        model="smollm2",  # --model_alias; it answers to any name and echoes it back
        config={"backend": "openai", "model": "smollm2", "server": "llama.cpp"},
        context=n_ctx,
        context_enforced=True,
    )


def corral_serve(model_dir: Path, port: int, workdir: Path, context: int | None, threads: int) -> Launch:
    """Corral's `backends.serve` (TGI's protocol) on the model folder, chat answers in the model's own template."""
    total = context or DEFAULT_CONTEXT
    cmd = [sys.executable, "-m", "backends.serve", "--model", str(model_dir), "--port", str(port)]
    cmd += ["--threads", str(threads), "--max-total-tokens", str(total)]
    return Launch(
        cmd=cmd,
        ready_path="/health",  # uvicorn starts only after the model has loaded
        model=model_dir.resolve().name,  # the name replies carry; the chat route accepts any name
        # chatml is SmolLM2's format: the stop strings, and the prompt when server_chat_template is turned off
        config={"backend": "tgi", "server_chat_template": True, "template": "chatml"},
        context=total,
        context_enforced=True,
    )


PEERS: dict[str, PeerKind] = {
    "transformers": PeerKind("folder", transformers_serve),
    "llama-cpp": PeerKind("gguf", llama_cpp_server),
    "corral-serve": PeerKind("folder", corral_serve),
}
PEER_IDS = tuple(PEERS)


def llama_cpp_python() -> Path:
    """The interpreter of the llama.cpp virtual environment; PeerUnavailable when it is not built."""
    python = LLAMA_VENV / "bin" / "python"
    installed = list(LLAMA_VENV.glob(f"lib/python*/site-packages/llama_cpp_python-{LLAMA_CPP_VERSION}.dist-info"))
    if not python.is_file() or not installed:
        raise PeerUnavailable(
            f"llama-cpp-python {LLAMA_CPP_VERSION} is not installed in {LLAMA_VENV.name}/; build it with "
            "`make llama-cpp` (the first build compiles llama.cpp, about 7-10 minutes)"
        )
    return python


def start_peer(
    peer_id: str,
    model: Path,
    workdir: Path,
    *,
    context: int | None = None,
    threads: int = 1,
    timeout: float = START_TIMEOUT,
    port: int | None = None,
) -> Peer:
    """Start peer `peer_id` on a free loopback port serving `model` and wait until it answers.

    `model` is the converted model folder or the GGUF file, as `PEERS[peer_id].serves` says; `context` is the
    context length in tokens (default `DEFAULT_CONTEXT`; transformers serve takes none); `port` starts it on that
    port (to restart one where it was) instead of a free one.
    """
    kind = PEERS[peer_id]
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    launch = kind.launch(model, port, workdir, context, threads)
    log = workdir / f"{peer_id}-{port}.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **launch.env}
    with log.open("wb") as out:
        proc = subprocess.Popen(launch.cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    process = Process(url=url, process=proc, log=log)
    try:
        wait_ready(proc, url + launch.ready_path, log, timeout)
    except PeerStartError as exc:
        process.stop()
        raise PeerStartError(f"peer {peer_id}: {exc}") from None
    except BaseException:
        process.stop()
        raise
    return Peer(
        name=peer_id,
        url=url,
        model=launch.model,
        config=launch.config,
        context=launch.context,
        context_enforced=launch.context_enforced,
        served=model,
        process=process,
    )


def wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path, timeout: float) -> None:
    """Poll GET `url` until it answers 200; PeerStartError with the log's tail if the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    with httpx.Client(timeout=2.0, trust_env=False) as http:  # loopback: never through a proxy
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise PeerStartError(f"the server exited with code {proc.returncode}; its log ends:\n{_tail(log)}")
            try:
                reply = http.get(url)
                if reply.status_code == 200:
                    return
                last = f"HTTP {reply.status_code}: {reply.text[:200]}"
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
            time.sleep(0.2)
    raise PeerStartError(
        f"GET {url} did not answer 200 within {timeout:.0f} s (last: {last}); its log ends:\n{_tail(log)}"
    )


def _tail(log: Path, chars: int = 3000) -> str:
    return log.read_text(encoding="utf-8", errors="replace")[-chars:]
