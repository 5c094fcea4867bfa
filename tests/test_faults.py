"""Faults made on purpose with real processes: backends stalled and killed, the database locked, full or read-only,
the app itself killed mid-battle. Every case: a sentence for the user, no vote lost or doubled, the app serves on.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gradio_client import Client

from arena.battle import VOTE_NOT_SAVED
from arena.maintenance import PREFIX_CHARS, instance_prefix
from arena.sampling import NOT_ENOUGH
from arena.text import ERROR_MARK
from arena.workers import answers
from backends.base import BackendError
from backends.demo import DemoModels
from tests.support.db_checks import invariant_violations, rows, vote_rows
from tests.support.faults import (
    CannotMount,
    FaultLog,
    SqliteLock,
    fill_disk,
    launch_app,
    remount,
    serve_on,
    sigkill,
    small_filesystem,
    wait_until,
)
from tests.support.helpers import ROOT, RunningApp, config_data, free_port, start_workers
from tests.test_app import NOTICE, PANE_A, PANE_B, text_of

FAULTS = FaultLog()
THANKS = "Thanks, your vote is recorded."
ROUND_ERROR = "This round ended with an error, so it cannot be voted on."


def _all_user_messages() -> set[str]:
    found, todo = set(), [BackendError]
    while todo:
        cls = todo.pop()
        found.add(cls.user_message)
        todo += cls.__subclasses__()
    return found


@pytest.fixture(scope="module", autouse=True)
def count_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    """State, at the end of the module, how many faults were injected."""
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        with request.config.pluginmanager.getplugin("capturemanager").global_and_fixture_disabled():
            reporter.write_line(f"\ntest_faults: {len(FAULTS.injected)} faults injected: {'; '.join(FAULTS.injected)}")


def pane_texts(outputs: Any) -> tuple[str, str]:
    return tuple(text_of(outputs[p][-1]) if outputs[p] else "" for p in (PANE_A, PANE_B))  # type: ignore[return-value]


def both_streaming(job: Any) -> bool:
    outputs = job.outputs()
    return bool(outputs) and all(t and t != "…" for t in pane_texts(outputs[-1]))


def healthy(app: RunningApp) -> bool:
    with urllib.request.urlopen(app.url + "config", timeout=10) as resp:
        return bool(resp.status == 200)


def ends_with_a_sentence(pane: str) -> bool:
    return any(pane.endswith(f"{ERROR_MARK} {sentence}") for sentence in _all_user_messages())


# --- backends: stalled, killed mid-stream, all down, back ----------------------------------------------------------


def test_backend_stalls_dies_is_down_and_comes_back(demo_models: DemoModels, tmp_path: Path) -> None:
    port = free_port()
    serve = serve_on(demo_models, tmp_path / "serve", port)
    gen = {"max_new_tokens": 400, "seed": 5, "temperature": 0.8}
    models = [
        {
            "name": f"remote-{adapter}",
            "backend": "tgi",
            "endpoints": [serve.url],
            "template": "chatml",
            "adapter_id": adapter,
            "generation": gen,
            "timeouts": {"connect": 2, "first_token": 60, "between_tokens": 2},
            "health_interval": 0.5,
        }
        for adapter in ("lora-a", "lora-b")
    ]
    app = launch_app({"models": models}, tmp_path / "app")
    try:
        client = Client(app.url, verbose=False)
        # 1. the backend process stalls mid-stream (SIGSTOP): the between-tokens timeout ends both panes
        job = client.submit("Raconte une longue histoire.", api_name="/battle_send")
        wait_until(lambda: both_streaming(job), "both panes streaming")
        FAULTS.inject("backend process stalled mid-stream (SIGSTOP)")
        os.kill(serve.process.pid, signal.SIGSTOP)
        try:
            stalled = job.result(timeout=120)
        finally:
            os.kill(serve.process.pid, signal.SIGCONT)
        assert all(ends_with_a_sentence(p) and not p.startswith(ERROR_MARK) for p in pane_texts(stalled)), stalled
        assert stalled[NOTICE] == ROUND_ERROR
        assert client.predict(api_name="/battle_vote_a")[NOTICE].startswith(ROUND_ERROR)

        # 2. the backend process is killed mid-stream (SIGKILL): the text so far stays, then a sentence
        wait_until(lambda: client.predict(api_name="/battle_new")[NOTICE] == "", "the backend healthy again")
        job = client.submit("Et une autre histoire ?", api_name="/battle_send")
        wait_until(lambda: both_streaming(job), "both panes streaming")
        FAULTS.inject("backend process killed mid-stream (SIGKILL)")
        sigkill(serve)
        killed = job.result(timeout=120)
        assert all(ends_with_a_sentence(p) and not p.startswith(ERROR_MARK) for p in pane_texts(killed)), killed
        assert killed[NOTICE] == ROUND_ERROR

        # 3. every backend down: new battles say so, chat says so, the page still serves
        FAULTS.inject("every backend down (its only server dead, health probes failing)")
        wait_until(lambda: client.predict(api_name="/battle_new")[NOTICE] == NOT_ENOUGH, "models marked down")
        assert client.predict("Quelqu'un ?", api_name="/battle_send")[NOTICE] == NOT_ENOUGH
        chat = client.predict("remote-lora-a", "Allô ?", api_name="/chat_send")
        assert chat[2] == "remote-lora-a is unavailable right now. Please choose another model or try later."
        assert healthy(app)

        # 4. the backend comes back on its port: battles and votes work again, with no restart of the app
        serve = serve_on(demo_models, tmp_path / "serve", port)
        wait_until(lambda: client.predict(api_name="/battle_new")[NOTICE] == "", "models marked up again")
        done = client.predict("Bonjour !", api_name="/battle_send")
        assert done[NOTICE] == "" and all(p and ERROR_MARK not in p for p in pane_texts(done))
        assert client.predict(api_name="/battle_vote_b")[NOTICE] == THANKS
    finally:
        app.stop()
        serve.stop()
    statuses = sorted(s for (s,) in rows(app.db_url, "SELECT status FROM battles"))
    assert statuses == ["errored", "errored", "voted"]
    assert len(vote_rows(app.db_url)) == 1 and invariant_violations(app.db_url) == []


# --- the database: locked past busy_timeout, full, read-only ---------------------------------------------------------


def local_config(demo_models: DemoModels, max_new_tokens: int = 16) -> dict[str, Any]:
    data = config_data(demo_models, max_new_tokens=max_new_tokens)
    data["arena"]["limits"] = {"messages_per_minute": 0, "votes_per_hour": 0}
    return data


def test_a_vote_blocked_by_another_writer_past_the_busy_timeout_is_retried_and_stored(
    demo_models: DemoModels, tmp_path: Path
) -> None:
    app = launch_app(local_config(demo_models), tmp_path)
    try:
        client = Client(app.url, verbose=False)
        client.predict("Bonjour", api_name="/battle_send")
        FAULTS.inject("database write-locked by another process for longer than busy_timeout (10 s)")
        lock = SqliteLock(tmp_path / "corral.db")
        try:
            job = client.submit(api_name="/battle_vote_a")
            wait_until(lambda: "could not store a vote (attempt 1 of 3" in app.log.read_text(), "a failed try", 60)
        finally:
            lock.release()
        assert job.result(timeout=60)[NOTICE] == THANKS
        assert healthy(app)
    finally:
        app.stop()
    [vote] = vote_rows(app.db_url)
    assert vote[3] == "a" and invariant_violations(app.db_url) == []
    assert "database is locked" in app.log.read_text() and "INSERT INTO" not in app.log.read_text()


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs (root only; the test says why it is skipped otherwise)."""
    mounted = small_filesystem(tmp_path / "mnt")
    try:
        path = mounted.__enter__()
    except CannotMount as exc:
        pytest.skip(f"disk-full and read-only faults need a tmpfs of their own: {exc}")
    try:
        yield path
    finally:
        mounted.__exit__(None, None, None)


def truncate_wal(db: Path) -> bool:
    """Checkpoint the WAL into the database and cut it to 0 bytes: the next write must grow a file."""
    # closing() matters: sqlite3's own context manager only commits, and a connection left for the garbage
    # collector keeps the file open for writing, so the volume could not be remounted read-only later
    with contextlib.closing(sqlite3.connect(db)) as conn:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    wal = db.with_name(db.name + "-wal")
    return busy == 0 and (not wal.exists() or wal.stat().st_size == 0)


def test_a_full_disk_refuses_the_vote_with_a_sentence_and_a_read_only_one_refuses_to_start(
    demo_models: DemoModels, tmp_path: Path, tmpfs: Path
) -> None:
    db = tmpfs / "corral.db"
    app = launch_app(local_config(demo_models), tmp_path / "app", db_url=f"sqlite:///{db}")
    try:
        client = Client(app.url, verbose=False)
        client.predict("Bonjour", api_name="/battle_send")
        wait_until(lambda: truncate_wal(db), "the WAL checkpointed and truncated")
        FAULTS.inject("database disk full (tmpfs filled to the last byte)")
        filler = fill_disk(tmpfs)
        refused = client.predict(api_name="/battle_vote_a")
        filler.unlink()
        assert refused[NOTICE] == VOTE_NOT_SAVED
        assert vote_rows(app.db_url) == [], "a vote was stored although the user was told it was not"
        assert client.predict(api_name="/battle_vote_a")[NOTICE] == THANKS, "the same vote could not be cast again"

        assert healthy(app)
    finally:
        app.stop()
    # Linux refuses to remount a file system read-only while a process holds a file open for writing, as the
    # app does: the read-only fault is a restart on a volume that went read-only meanwhile.
    FAULTS.inject("database volume read-only at restart")
    remount(tmpfs, "ro")
    try:
        cmd = [sys.executable, str(ROOT / "app.py"), "--config", str(tmp_path / "app" / "config.yaml")]
        cmd += ["--db", f"sqlite:///{db}", "--data-dir", str(tmp_path / "app"), "--port", str(free_port())]
        refused_start = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=180, check=False)
    finally:
        remount(tmpfs, "rw")
    assert refused_start.returncode == 2 and "Traceback" not in refused_start.stderr
    last = refused_start.stderr.strip().splitlines()[-1]
    assert last.startswith("corral: the database ") and "cannot be opened for writing" in last, last
    assert [v[3] for v in vote_rows(app.db_url)] == ["a"] and invariant_violations(app.db_url) == []
    log = app.log.read_text()
    assert "database or disk is full" in log and "Traceback" not in log


# --- the app killed mid-battle and restarted, beside another live instance ----------------------------------------


def test_app_killed_mid_battle_restarts_closes_its_battle_keeps_every_vote(
    demo_models: DemoModels, tmp_path: Path
) -> None:
    shared = f"sqlite:///{tmp_path / 'shared.db'}"
    config = local_config(demo_models, max_new_tokens=300)  # long answers: the kill lands mid-stream
    first = launch_app(config, tmp_path / "a", db_url=shared)
    # a second live instance on the same database, with short answers to vote on quickly
    other = launch_app(local_config(demo_models), tmp_path / "b", db_url=shared)
    restarted: RunningApp | None = None
    try:
        for i, app in enumerate((first, other, other)):
            voter = Client(app.url, verbose=False)
            voter.predict(f"Question {i}", api_name="/battle_send")
            assert voter.predict(api_name="/battle_vote_a")[NOTICE] == THANKS
        elsewhere = Client(other.url, verbose=False)
        elsewhere.predict("Je reviens voter tout à l'heure.", api_name="/battle_send")
        before = vote_rows(shared)

        victim = Client(first.url, verbose=False)
        job = victim.submit("Raconte une très longue histoire.", api_name="/battle_send")
        wait_until(lambda: both_streaming(job), "both panes streaming")
        FAULTS.inject("app process killed mid-battle (SIGKILL)")
        sigkill(first)
        restarted = launch_app(config, tmp_path / "a", db_url=shared, log_name="app-restarted.log")

        assert "closed 1 interrupted battle(s) as incomplete" in restarted.log.read_text()
        assert vote_rows(shared) == before, "a stored vote was lost or doubled by the kill and restart"
        statuses = sorted(s for (s,) in rows(shared, "SELECT status FROM battles"))
        assert statuses == ["incomplete", "open", "voted", "voted", "voted"]
        # the other instance's battle was left open, and its voter can still vote
        assert elsewhere.predict(api_name="/battle_vote_tie")[NOTICE] == THANKS
        # the restarted instance serves again
        again = Client(restarted.url, verbose=False)
        again.predict("Me revoilà", api_name="/battle_send")
        assert again.predict(api_name="/battle_vote_b")[NOTICE] == THANKS
    finally:
        for running in (first, other, restarted):
            if running is not None and running.process.poll() is None:
                running.stop()
    after = vote_rows(shared)
    assert after[: len(before)] == before and len(after) == len(before) + 2
    assert invariant_violations(shared) == []


# --- one worker of `app.py --workers 2` killed mid-battle, behind nginx -------------------------------------------


def _worker_of(battle_id: str, prefixes: dict[str, int]) -> int:
    return prefixes[battle_id[:PREFIX_CHARS]]


def _newest_open_battle(db_url: str, known: set[str]) -> str:
    [battle_id] = [b for (b,) in rows(db_url, "SELECT id FROM battles WHERE status = 'open'") if b not in known]
    return str(battle_id)


def test_a_worker_killed_mid_battle_is_restarted_and_no_vote_is_lost_or_doubled(
    demo_models: DemoModels, tmp_path: Path
) -> None:
    config = local_config(demo_models, max_new_tokens=300)  # long answers: the kill lands mid-stream
    app = start_workers(config, tmp_path, 2, env={"CORRAL_INSTANCE": "faults"})
    prefixes = {instance_prefix(f"faults/worker-{n}"): n for n in (1, 2)}
    db = app.db_url
    try:
        # a voter with an open battle on each worker (each client keeps nginx's cookie: one worker throughout)
        waiting: dict[int, Client] = {}
        for i in range(40):
            if len(waiting) == 2:
                break
            voter = Client(app.url, verbose=False)
            opened = {b for (b,) in rows(db, "SELECT id FROM battles WHERE status = 'open'")}
            voter.predict(f"Question {i}", api_name="/battle_send")
            worker = _worker_of(_newest_open_battle(db, opened), prefixes)
            if worker in waiting:  # this worker has its waiting voter already: vote now
                assert voter.predict(api_name="/battle_vote_a")[NOTICE] == THANKS
            else:
                waiting[worker] = voter
        assert len(waiting) == 2, "nginx sent 40 new browsers to one worker"
        known = {b for (b,) in rows(db, "SELECT id FROM battles WHERE status = 'open'")}
        before = vote_rows(db)

        victim = Client(app.url, verbose=False)
        job = victim.submit("Raconte une très longue histoire.", api_name="/battle_send")
        wait_until(lambda: both_streaming(job), "both panes streaming")
        killed = _worker_of(_newest_open_battle(db, known), prefixes)
        survivor = 3 - killed
        pid = app.worker_pids()[killed]
        FAULTS.inject("one of two app workers killed mid-battle (SIGKILL)")
        os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(Exception):  # the stream ends with the process; how the client reports it varies
            job.result(timeout=120)
        assert job.done()

        # the supervisor starts the worker again; it closes the two battles its predecessor left open
        wait_until(lambda: app.worker_pids()[killed] != pid, "the killed worker started again")
        wait_until(
            lambda: f"[worker {killed}] corral INFO closed 2 interrupted battle(s)" in app.log.read_text(),
            "the restarted worker closing its predecessor's open battles",
        )
        port = app.worker_ports()[killed]
        wait_until(lambda: answers(port), "the restarted worker listening")  # from now on nginx sends its voters back
        assert vote_rows(db) == before, "a stored vote was lost or doubled by the kill and restart"
        # the survivor's voter votes as if nothing happened; the killed worker's voter is told to ask again
        assert waiting[survivor].predict(api_name="/battle_vote_b")[NOTICE] == THANKS
        refused = waiting[killed].predict(api_name="/battle_vote_b")[NOTICE]
        assert refused != THANKS and refused.endswith(".") and "Traceback" not in refused
        # the victim, back on its own (restarted) worker, starts again and votes
        victim.predict("Me revoilà", api_name="/battle_send")
        assert _worker_of(_newest_open_battle(db, known), prefixes) == killed
        assert victim.predict(api_name="/battle_vote_tie")[NOTICE] == THANKS
        assert app.process.poll() is None
    finally:
        app.stop()
    after = vote_rows(db)
    assert after[: len(before)] == before and len(after) == len(before) + 2
    statuses = Counter(s for (s,) in rows(db, "SELECT status FROM battles"))
    assert statuses["incomplete"] == 2 and statuses["open"] == 0
    assert invariant_violations(db) == []
