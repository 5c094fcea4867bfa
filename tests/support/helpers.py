"""Test helpers: configs over the demo models, and running app.py as a real process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from arena.config import AppConfig, parse_config
from backends.demo import DemoModels
from benchmarks.processes import Process as Process
from benchmarks.processes import RunningApp as RunningApp
from benchmarks.processes import free_port as free_port
from benchmarks.processes import start_app as start_app
from benchmarks.processes import start_apps as start_apps
from benchmarks.processes import start_workers as start_workers
from benchmarks.processes import wait_for_port as wait_for_port

ROOT = Path(__file__).resolve().parents[2]


def config_data(demo: DemoModels, *, max_new_tokens: int = 48, extra_too_long: bool = False) -> dict[str, Any]:
    """A config dict with the demo base and its two LoRA variants (fixed seeds, so runs repeat)."""
    gen = {"max_new_tokens": max_new_tokens, "temperature": 0.8, "top_p": 0.95, "seed": 7}
    models: list[dict[str, Any]] = [
        {"name": "demo-base", "model": str(demo.base), "description": "the base", "license": "demo licence"},
        {"name": "demo-lora-a", "model": str(demo.base), "adapter": str(demo.adapters["lora-a"])},
        {"name": "demo-lora-b", "model": str(demo.base), "adapter": str(demo.adapters["lora-b"])},
    ]
    for m in models:
        m["generation"] = gen
    if extra_too_long:
        # a real backend failure: the request can never fit the demo model's 2048-token context
        models.append(
            {"name": "too-long", "model": str(demo.base), "generation": {**gen, "max_new_tokens": 4000}, "weight": 1}
        )
    return {"arena": {"max_input_chars": 200, "max_turns": 3}, "models": models}


def config_for(demo: DemoModels, **kwargs: Any) -> AppConfig:
    """A validated AppConfig over the demo models."""
    return parse_config(config_data(demo, **kwargs), source=Path("test-config.yaml"))


def run_app(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `python app.py ARGS` to its end (for starts that must be refused), with its output captured."""
    cmd = [sys.executable, "app.py", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)


def start_serve(demo: DemoModels, workdir: Path, *extra: str) -> Process:
    """Start `python -m backends.serve` with the demo base and both demo adapters on a free port."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = workdir / f"serve-{port}.log"
    cmd = [sys.executable, "-m", "backends.serve", "--model", str(demo.base), "--port", str(port), "--threads", "1"]
    for name, path in demo.adapters.items():
        cmd += ["--adapter", f"{name}={path}"]
    with log.open("wb") as out:
        proc = subprocess.Popen([*cmd, *extra], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    wait_for_port(proc, port, log)
    return Process(url=f"http://127.0.0.1:{port}", process=proc, log=log)
