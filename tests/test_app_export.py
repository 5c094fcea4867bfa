"""The admin Export tab of a real app process: absent without CORRAL_ADMIN_TOKEN, token-checked with it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from gradio_client import Client

from backends.demo import DemoModels
from tests.support.helpers import ROOT, RunningApp, config_data, start_app

TOKEN = "admin-token-for-tests-7f3a9c"
# inputs of /export: token, format, file type, first day, last day, languages, named, leaks, margin
FORM = ("lmsys", ".jsonl", "", "", "", False, False, False)


def small_config(demo_models: DemoModels) -> dict[str, object]:
    data = config_data(demo_models, max_new_tokens=16)
    data["models"] = [m for m in data["models"] if m["name"] in ("demo-base", "demo-lora-a")]
    return data


@pytest.fixture(scope="module")
def admin_app(demo_models: DemoModels, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    running = start_app(small_config(demo_models), tmp_path_factory.mktemp("admin"), env={"CORRAL_ADMIN_TOKEN": TOKEN})
    yield running
    running.stop()


def endpoints(url: str) -> set[str]:
    with urllib.request.urlopen(f"{url}gradio_api/info", timeout=30) as response:
        return set(json.load(response)["named_endpoints"])


def test_export_downloads_the_votes_with_the_admin_token(admin_app: RunningApp, tmp_path: Path) -> None:
    client = Client(admin_app.url, verbose=False, download_files=str(tmp_path))
    client.predict("Bonjour !", api_name="/battle_send")
    assert client.predict(api_name="/battle_vote_a")[3] == "Thanks, your vote is recorded."

    file, status = client.predict(TOKEN, *FORM, api_name="/export")
    rows = [json.loads(line) for line in Path(file).read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 1 and rows[0]["winner"] == "model_a"
    assert {rows[0]["model_a"], rows[0]["model_b"]} <= {"demo-base", "demo-lora-a"}
    assert "Wrote 1 lmsys row from 1 record in " in status and "/tmp" not in status


def test_a_wrong_or_missing_token_gets_a_sentence_and_no_file(admin_app: RunningApp) -> None:
    client = Client(admin_app.url, verbose=False)
    for wrong in ("", "admin-token-for-tests-7f3a9d", TOKEN[:-1]):
        file, status = client.predict(wrong, *FORM, api_name="/export")
        assert file is None and status == "That admin token is not right."


def test_bad_form_values_get_sentences(admin_app: RunningApp) -> None:
    client = Client(admin_app.url, verbose=False)
    _, status = client.predict(TOKEN, "dpo", ".jsonl", "March 1st", "", "", False, False, False, api_name="/export")
    assert status == "The first day must be a date written YYYY-MM-DD, for example 2026-03-01."
    _, status = client.predict(TOKEN, "raw", ".parquet", "", "", "", False, False, False, api_name="/export")
    assert status == "The raw format is written as JSON Lines only; use a .jsonl file name."
    _, status = client.predict(TOKEN, "dpo", ".jsonl", "", "", "", False, False, True, api_name="/export")
    assert status == "A margin column only applies to the reward format."


def test_the_token_never_reaches_the_log(admin_app: RunningApp) -> None:
    assert TOKEN not in admin_app.log.read_text(encoding="utf-8", errors="replace")


def test_without_an_admin_token_there_is_no_export_tab_or_endpoint(
    admin_app: RunningApp, demo_models: DemoModels, tmp_path: Path
) -> None:
    assert "/export" in endpoints(admin_app.url)  # the probe sees the endpoint where it exists
    running = start_app(small_config(demo_models), tmp_path)
    try:
        assert "/export" not in endpoints(running.url) and "/battle_send" in endpoints(running.url)
        with urllib.request.urlopen(f"{running.url}config", timeout=30) as response:
            page = response.read().decode()
        assert "Export (admin)" not in page and "export-token" not in page
    finally:
        running.stop()


def test_a_short_admin_token_refuses_to_start(demo_models: DemoModels, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    import yaml

    config.write_text(yaml.safe_dump(small_config(demo_models)), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "app.py", "--config", str(config), "--data-dir", str(tmp_path)],
        cwd=ROOT,
        env={**os.environ, "CORRAL_ADMIN_TOKEN": "short", "CORRAL_IP_SALT": "test-salt-0123456789abcdef"},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == "corral: CORRAL_ADMIN_TOKEN must be at least 16 characters long."
