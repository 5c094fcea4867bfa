"""Builds missing style variants in the background, one child process at a time, while the arena serves.

Each build is `python -m backends.variants build … --json` in a child process (its own interpreter and core, so
training never holds the server's); its progress lines update a status the UI shows, and a finished adapter is
handed to `on_ready`, which attaches it to the running model so the variant joins the arena.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

log = logging.getLogger(__name__)
State = Literal["waiting", "building", "ready", "failed"]


@dataclass(frozen=True)
class Job:
    """One variant to build: the arena model it becomes, its recipe, its base folder and its adapter folder."""

    model: str
    recipe: str
    base: Path
    out: Path


@dataclass(frozen=True)
class VariantStatus:
    """Where one variant's build stands."""

    model: str
    recipe: str
    state: State = "waiting"
    step: int = 0
    steps: int = 0

    def sentence(self) -> str:
        """One short phrase for the page."""
        if self.state == "building":
            return (
                f"{self.model}: training, step {self.step} of {self.steps}" if self.steps else f"{self.model}: starting"
            )
        return {
            "waiting": f"{self.model}: waiting",
            "ready": f"{self.model}: ready",
            "failed": f"{self.model}: failed",
        }[self.state]


class VariantBuilder:
    """Runs the jobs in order on one background thread; `statuses()` is safe to call from any thread."""

    def __init__(
        self,
        jobs: Sequence[Job],
        on_ready: Callable[[Job], None],
        *,
        threads: int = 1,
        cwd: Path | None = None,
    ) -> None:
        self._jobs = list(jobs)
        self._on_ready = on_ready
        self._threads = threads
        self._cwd = cwd or Path(__file__).resolve().parents[2]
        self._lock = threading.Lock()
        self._status = {job.model: VariantStatus(job.model, job.recipe) for job in self._jobs}
        self._stopping = threading.Event()
        self._child: subprocess.Popen[str] | None = None
        self._thread = threading.Thread(target=self._run, name="variant-builder", daemon=True)

    def start(self) -> None:
        """Start building (returns at once)."""
        if self._jobs:
            self._thread.start()

    def statuses(self) -> list[VariantStatus]:
        """Every job's status, in build order."""
        with self._lock:
            return [self._status[job.model] for job in self._jobs]

    @property
    def pending(self) -> bool:
        """Whether any variant is still waiting or training."""
        return any(s.state in ("waiting", "building") for s in self.statuses())

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every job has ended; False on timeout."""
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def stop(self) -> None:
        """Stop the running build (its half-written output is discarded by the child's staging)."""
        self._stopping.set()
        child = self._child
        if child is not None and child.poll() is None:
            child.terminate()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _set(self, model: str, **changes: object) -> None:
        with self._lock:
            self._status[model] = replace(self._status[model], **changes)  # type: ignore[arg-type]

    def _run(self) -> None:
        for job in self._jobs:
            if self._stopping.is_set():
                return
            self._set(job.model, state="building")
            if not self._build(job):
                self._set(job.model, state="failed")
                continue
            try:
                self._on_ready(job)
            except Exception:
                log.exception("variant %s was built but could not be attached", job.model)
                self._set(job.model, state="failed")
                continue
            self._set(job.model, state="ready")
            log.info("variant %s ready (recipe %s)", job.model, job.recipe)

    def _build(self, job: Job) -> bool:
        cmd = [sys.executable, "-m", "backends.variants", "build", job.recipe]
        cmd += ["--base", str(job.base), "--out", str(job.out), "--json", "--threads", str(self._threads)]
        job.out.parent.mkdir(parents=True, exist_ok=True)
        child_log = job.out.parent / f"{job.out.name}.build.log"  # the child's warnings and errors
        log.info("building variant %s from recipe %s in the background (log: %s)", job.model, job.recipe, child_log)
        with child_log.open("a", encoding="utf-8") as errors:  # appended: two app processes may share it
            self._child = child = subprocess.Popen(cmd, cwd=self._cwd, stdout=subprocess.PIPE, stderr=errors, text=True)
            assert child.stdout is not None
            for line in child.stdout:
                self._progress(job, line)
            code = child.wait()
        if code != 0:
            if not self._stopping.is_set():
                tail = child_log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1:]
                log.error("building variant %s failed: %s (see %s)", job.model, tail[0] if tail else code, child_log)
            return False
        return True

    def _progress(self, job: Job, line: str) -> None:
        try:
            event = json.loads(line)
        except ValueError:
            return
        if event.get("event") == "step":
            self._set(job.model, step=int(event["step"]), steps=int(event["steps"]))
            log.info("variant %s: step %s/%s, loss %s", job.model, event["step"], event["steps"], event["loss"])
