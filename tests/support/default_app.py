"""Running app.py as a new user does: no --config, so the real default model and its style variants."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from backends.variants import is_built, load_recipe, names
from tests.support.helpers import ROOT, RunningApp, free_port, wait_for_port

BASE_FOLDER = "smollm2-135m-instruct"  # app.DEFAULT_MODEL_FOLDER


def variants_to_build(models_dir: Path) -> list[str]:
    """The default config's variants that the next start will have to train (not yet built from their recipe)."""
    base = models_dir / BASE_FOLDER
    return [n for n in names() if not is_built(models_dir / "variants" / n, load_recipe(n), base)]


def start_default_app(data_dir: Path, models_dir: Path, *, timeout: float = 300) -> RunningApp:
    """`python app.py` with only data and models folders and a port: the default arena."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = data_dir / f"app-{port}.log"
    cmd = [sys.executable, str(ROOT / "app.py"), "--data-dir", str(data_dir), "--models-dir", str(models_dir)]
    env = {**os.environ, "CORRAL_IP_SALT": "test-salt-0123456789abcdef", "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as out:
        proc = subprocess.Popen([*cmd, "--port", str(port)], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    app = RunningApp(url=f"http://127.0.0.1:{port}/", process=proc, log=log, db_url=f"sqlite:///{data_dir}/corral.db")
    try:
        wait_for_port(proc, port, log, timeout)
    except RuntimeError:
        app.stop()
        raise
    return app


def wait_for_variants(app: RunningApp, count: int, *, timeout: float = 600) -> None:
    """Wait until `count` variants built in the background have joined the arena (read from the app's log)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = app.log.read_text(encoding="utf-8", errors="replace")
        if "could not be attached" in text or "failed:" in text:
            raise AssertionError(f"a variant failed to build:\n{text[-3000:]}")
        if text.count(" ready (recipe ") >= count:
            return
        assert app.process.poll() is None, f"app.py exited:\n{text[-3000:]}"
        time.sleep(0.5)
    raise AssertionError(f"{count} variant(s) did not join within {timeout} s")
