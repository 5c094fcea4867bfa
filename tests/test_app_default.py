"""The first run as a new user has it: `python app.py` with no config serves the real default model, the style
variants are trained in the background and join the arena, and a second start reuses everything."""

from __future__ import annotations

import socket
import time
import urllib.request
from pathlib import Path
from typing import Any

from gradio_client import Client

from backends.default_model import MARKER
from tests.backends.test_default_model import printable_text
from tests.support.default_app import start_default_app, variants_to_build, wait_for_variants
from tests.support.helpers import run_app

PANE_A, PANE_B = 0, 1


def answers(result: Any) -> tuple[str, str]:
    """The two panes' last answers from a /battle_send result."""

    def text(pane: list[dict[str, Any]]) -> str:
        content = pane[-1]["content"] if pane else ""
        return content if isinstance(content, str) else "".join(p.get("text", "") for p in content)

    return text(result[PANE_A]), text(result[PANE_B])


def test_first_start_serves_real_words_then_variants_join_and_a_second_start_reuses_all(
    smollm2: Path, tmp_path: Path
) -> None:
    models_dir = smollm2.parent  # the session's converted model (its own conversion is tested on its own)
    pending = variants_to_build(models_dir)
    converted_at = (smollm2 / MARKER).stat().st_mtime
    started = time.monotonic()
    app = start_default_app(tmp_path / "data", models_dir)
    try:
        first_up = time.monotonic() - started
        with urllib.request.urlopen(f"{app.url}config", timeout=10) as resp:
            page = resp.read().decode("utf-8")
        assert "Real, small models" in page and "SmolLM2-135M-Instruct" in page
        if pending:
            assert "variant-progress" in page
        wait_for_variants(app, len(pending))
        client = Client(app.url, verbose=False)
        a, b = answers(client.predict("How do I make a good cup of tea?", api_name="/battle_send"))
        assert a.strip() and b.strip() and printable_text(a) and printable_text(b), (a, b)
        first_battle = time.monotonic() - started
    finally:
        app.stop()
    log = app.log.read_text(encoding="utf-8")
    assert ("building variant" in log) == bool(pending)

    started = time.monotonic()
    again = start_default_app(tmp_path / "data", models_dir)
    try:
        later_up = time.monotonic() - started
        client = Client(again.url, verbose=False)
        a, b = answers(client.predict("Name three colours.", api_name="/battle_send"))
        assert a.strip() and b.strip() and printable_text(a) and printable_text(b), (a, b)
    finally:
        again.stop()
    log = again.log.read_text(encoding="utf-8")
    assert "building variant" not in log and "converting" not in log
    assert (smollm2 / MARKER).stat().st_mtime == converted_at, "the default model was converted again"
    print(f"first start: up {first_up:.1f} s, first battle {first_battle:.1f} s ({len(pending)} variants built)")
    print(f"later start: up {later_up:.1f} s")


def test_a_port_in_use_is_refused_before_any_model_loads(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = run_app("--port", str(port), "--data-dir", str(tmp_path), "--models-dir", str(tmp_path), timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"port {port}" in lines[0] and "--port" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and "GRADIO_SERVER_PORT" not in proc.stderr
    assert not (tmp_path / "smollm2-135m-instruct").exists(), "models were prepared before the port was checked"
