"""Privacy in a real app process: raw client IPs never reach the database, secrets never reach the log, the admin
export refuses a wrong token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from gradio_client import Client

from arena.privacy import hash_ip
from tests.support.db_checks import rows
from tests.support.faults import FaultServer, launch_app
from tests.support.helpers import RunningApp
from tests.test_app import NOTICE

SALT = "pepper-7f3c1d9e5b2a4c68"
ADMIN = "admin-token-4b1e9c7d2f8a6e30-long-enough"
API_KEY = "sk-backend-key-91ad27c4e3f05b68"
CLIENT_IP = "203.0.113.77"  # sent as X-Forwarded-For, which Gradio's server trusts from 127.0.0.1 (a local proxy)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningApp, FaultServer]]:
    backend = FaultServer(mode="ok", text="Bonjour à vous").start()
    models = [
        {"name": name, "backend": "tgi", "endpoints": [backend.url], "template": "chatml", "api_key_env": "TEST_KEY"}
        for name in ("keyed-a", "keyed-b")
    ]
    env = {"CORRAL_IP_SALT": SALT, "CORRAL_ADMIN_TOKEN": ADMIN, "TEST_KEY": API_KEY, "CORRAL_LOG_LEVEL": "DEBUG"}
    running = launch_app({"models": models}, tmp_path_factory.mktemp("privacy"), env=env)
    yield running, backend
    running.stop()
    backend.stop()


def test_client_ips_are_stored_only_as_salted_hashes(app: tuple[RunningApp, FaultServer]) -> None:
    running, _ = app
    client = Client(running.url, verbose=False, headers={"X-Forwarded-For": CLIENT_IP})
    client.predict("Bonjour", api_name="/battle_send")
    assert client.predict(api_name="/battle_vote_a")[NOTICE] == "Thanks, your vote is recorded."
    client.predict("keyed-a", "Salut", api_name="/chat_send")
    [(ip_hash,)] = rows(running.db_url, "SELECT ip_hash FROM votes")
    expected = {hash_ip(ip, SALT.encode()) for ip in (CLIENT_IP, "127.0.0.1")}
    assert ip_hash in expected
    folder = Path(running.db_url.removeprefix("sqlite:///")).parent
    stored = b"".join(p.read_bytes() for p in folder.glob("corral.db*"))  # the file, its WAL and shared memory
    for raw in (CLIENT_IP, "127.0.0.1"):
        assert raw.encode() not in stored and raw.encode("utf-16-le") not in stored, f"{raw} is in the database"


def test_secrets_never_reach_the_log(app: tuple[RunningApp, FaultServer]) -> None:
    running, backend = app
    client = Client(running.url, verbose=False)
    client.predict("Bonjour", api_name="/battle_send")
    backend.mode = "validation"  # failures are logged too: they must not carry the key
    client.predict(api_name="/battle_new")
    client.predict("Encore ?", api_name="/battle_send")
    backend.mode = "ok"
    refused = client.predict("not-the-token", "dpo", ".jsonl", "", "", "", False, False, False, api_name="/export")
    assert refused[0] is None and "token" in refused[1].lower()
    assert any(h.get("authorization") == f"Bearer {API_KEY}" for h in backend.seen_headers), "the key was not sent"
    log = running.log.read_text(errors="replace")
    assert "DEBUG" in log, "the app did not log at DEBUG level, so this test proves little"
    for secret in (SALT, ADMIN, API_KEY):
        assert secret not in log, "a secret reached the log"
