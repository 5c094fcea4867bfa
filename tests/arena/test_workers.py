"""`app.py --workers N`: the proxy config made from deploy/nginx.conf, and the supervisor's restarts."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest

from arena.workers import (
    CONFIG_EXIT,
    NGINX_CONF,
    RESTART_DELAYS_S,
    Supervisor,
    Worker,
    WorkersError,
    check_nginx,
    find_nginx,
    listen_address,
    nginx_config,
    write_nginx_files,
)
from tests.support.helpers import ROOT, free_port


def test_the_repos_nginx_config_becomes_this_hosts_proxy(tmp_path: Path) -> None:
    text = nginx_config(
        NGINX_CONF.read_text(encoding="utf-8"), listen="127.0.0.1:9000", ports=[41001, 41002, 41003], prefix=tmp_path
    )
    servers = [line.strip() for line in text.splitlines() if line.strip().startswith("server 127.0.0.1:")]
    assert servers == [f"server 127.0.0.1:{p} max_fails=0;" for p in (41001, 41002, 41003)]
    assert "listen 127.0.0.1:9000;" in text and "listen 8080;" not in text
    assert text.startswith(f"pid {tmp_path / 'nginx.pid'};")
    assert "access_log off;" in text and f"proxy_temp_path {tmp_path / 'temp' / 'proxy'};" in text
    # what makes it Corral's proxy stays: affinity, streaming without buffering, the voter's address
    for kept in ("hash $corral_node consistent;", "proxy_buffering off;", "X-Forwarded-For $remote_addr"):
        assert kept in text


def test_a_config_without_the_parts_to_adapt_is_refused() -> None:
    with pytest.raises(WorkersError, match="no longer has the upstream servers"):
        nginx_config("events {}\n", listen="8080", ports=[1], prefix=Path("/x"))


@pytest.mark.parametrize(
    ("host", "expected"),
    [("127.0.0.1", "127.0.0.1:7860"), ("0.0.0.0", "7860"), ("::1", "[::1]:7860"), ("", "7860")],
)
def test_listen_address(host: str, expected: str) -> None:
    assert listen_address(host, 7860) == expected


def test_nginx_accepts_the_written_config_and_its_complaint_is_one_sentence(tmp_path: Path) -> None:
    nginx = find_nginx()
    assert nginx is not None, "nginx is a test dependency (Debian package nginx; `make system-deps`)"
    conf = write_nginx_files(tmp_path, listen="127.0.0.1:9000", ports=[41001, 41002])
    check_nginx(nginx, tmp_path, conf)  # nginx -t
    conf.write_text(conf.read_text(encoding="utf-8").replace("proxy_buffering off;", "proxy_buffering sideways;"))
    with pytest.raises(WorkersError, match=r"nginx refuses the proxy config .*proxy_buffering"):
        check_nginx(nginx, tmp_path, conf)


def test_find_nginx_says_none_when_it_is_missing() -> None:
    assert find_nginx(("no-such-nginx-here", "/nonexistent/nginx")) is None


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def exiting(code: int) -> list[str]:
    return [sys.executable, "-c", f"raise SystemExit({code})"]


def test_a_worker_that_dies_is_started_again_later_each_time(tmp_path: Path) -> None:
    clock, started = FakeClock(), []

    def command(worker: Worker) -> list[str]:
        started.append(clock.now)
        return exiting(1)

    worker = Worker(number=1, port=1, instance="t/worker-1")
    sup = Supervisor(command=command, env={}, workers=[worker], nginx=[], public=("127.0.0.1", 1), clock=clock)
    sup._spawn(worker)
    for delay in RESTART_DELAYS_S[:3]:
        assert worker.process is not None
        worker.process.wait()
        sup.watch_once()  # notices the exit: schedules the restart
        clock.now += delay - 0.01
        sup.watch_once()
        assert len(started) == worker.restarts + 1  # not yet
        clock.now += 0.02
        sup.watch_once()
    assert worker.restarts == 3 and len(started) == 4
    gaps = [b - a for a, b in itertools.pairwise(started)]
    assert gaps == pytest.approx(list(RESTART_DELAYS_S[:3]), abs=0.05)
    assert worker.process is not None
    worker.process.wait()


def test_a_worker_that_served_and_then_exits_with_code_2_is_started_again(tmp_path: Path) -> None:
    # exit code 2 after serving is a passing cause (the database restarting, its port taken meanwhile)
    clock, started = FakeClock(), []

    def command(worker: Worker) -> list[str]:
        started.append(clock.now)
        return exiting(CONFIG_EXIT)

    worker = Worker(number=1, port=1, instance="t/worker-1", served=True)
    sup = Supervisor(command=command, env={}, workers=[worker], nginx=[], public=("127.0.0.1", 1), clock=clock)
    sup._spawn(worker)
    assert worker.process is not None
    worker.process.wait()
    sup.watch_once()
    clock.now += RESTART_DELAYS_S[0]
    sup.watch_once()
    assert len(started) == 2
    worker.process.wait()


def test_a_worker_that_cannot_use_the_config_stops_the_supervisor(tmp_path: Path) -> None:
    worker = Worker(number=2, port=1, instance="t/worker-2")
    sup = Supervisor(
        command=lambda w: exiting(CONFIG_EXIT), env={}, workers=[worker], nginx=[], public=("127.0.0.1", 1)
    )
    sup._spawn(worker)
    assert worker.process is not None
    worker.process.wait()
    with pytest.raises(WorkersError, match="worker 2 cannot start with this configuration"):
        sup.watch_once()


def test_without_nginx_the_app_says_so_in_one_sentence(tmp_path: Path) -> None:
    command = [sys.executable, str(ROOT / "app.py"), "--workers", "2", "--demo", "--data-dir", str(tmp_path)]
    proc = subprocess.run(
        [*command, "--port", str(free_port())],
        cwd=ROOT,
        env={"CORRAL_NGINX": str(tmp_path / "nginx"), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--workers runs the app processes behind nginx, which is not installed" in proc.stderr
