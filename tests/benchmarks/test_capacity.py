"""The capacity search on fake per-level results: which levels it tries and the boundary it finds (no servers);
the app's CPU counted over a process tree."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest

from benchmarks.bench_concurrency import headline, main, meets_target
from benchmarks.capacity import Capacity, answer, find_capacity, next_level
from benchmarks.harness import proc_cpu_seconds, process_tree, tree_cpu_seconds


def search(limit: int, ladder: tuple[int, ...], extra_runs: int = 6) -> tuple[Capacity[int], list[int]]:
    """Search a fake system that passes every level up to `limit`; the result of a level is the level."""
    probed: list[int] = []

    async def probe(n: int) -> int:
        probed.append(n)
        return n

    found = asyncio.run(find_capacity(probe, lambda n: n <= limit, {n: n for n in ladder}, extra_runs=extra_runs))
    return found, probed


def test_it_bisects_between_the_last_passing_and_the_first_failing_level() -> None:
    found, probed = search(70, (25, 50, 100, 200))
    assert probed == [75, 62, 68, 71, 69, 70]
    assert found.capacity == 70 and found.exact and not found.above_ladder
    assert found.tried == [25, 50, 100, 200, *probed]


def test_it_goes_down_by_halving_below_the_ladder() -> None:
    found, probed = search(9, (25, 100))
    assert probed == [12, 6, 9, 10]
    assert found.capacity == 9 and found.exact


def test_capacity_is_zero_when_even_one_battle_fails() -> None:
    found, probed = search(0, (25, 100))
    assert probed == [12, 6, 3, 1]
    assert found.capacity == 0 and found.exact


def test_when_every_level_passes_the_capacity_is_the_largest_level_at_least() -> None:
    found, probed = search(10_000, (25, 50, 100, 200))
    assert probed == []
    assert found.capacity == 200 and found.above_ladder


def test_a_small_budget_keeps_the_largest_level_seen_to_pass() -> None:
    found, probed = search(70, (25, 50, 100, 200), extra_runs=2)
    assert probed == [75, 62]
    assert found.capacity == 62 and not found.exact


def test_a_level_failing_below_a_passing_one_bounds_the_answer() -> None:
    known = {25: True, 50: False, 100: True, 200: False}
    assert answer(known) == 25
    assert next_level(known) == 37


def test_the_target_is_p95_overhead_delivery_and_no_errors() -> None:
    row = {"p95_ttft_overhead_ms": 300.0, "delivered_ratio": 0.95, "errors": 0}
    assert meets_target(row)
    assert not meets_target({**row, "p95_ttft_overhead_ms": 300.1})
    assert not meets_target({**row, "delivered_ratio": 0.94})
    assert not meets_target({**row, "errors": 1})
    assert not meets_target({**row, "p95_ttft_overhead_ms": None})


def test_the_last_line_holds_the_figures_at_100_battles_and_the_capacity() -> None:
    level = {"delivered_ratio": 1.0, "p95_ttft_overhead_ms": 8.0, "p50_ttft_overhead_ms": 3.0, "errors": 0}
    levels = [{**level, "battles": n, "app_cpu_ms_per_token": n / 100} for n in (25, 100, 200)]
    result = {"levels": levels, "capacity": {"capacity_at_300ms": 140}}
    assert headline(result) == (
        "battles=100 delivered_ratio=1.0 p95_ttft_overhead_ms=8.0 p50_ttft_overhead_ms=3.0 errors=0 "
        "capacity_at_300ms=140 cpu_ms_per_token=1.0"
    )


def test_zero_workers_is_refused_with_a_sentence(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--workers", "0"])
    assert exit_.value.code == 2
    assert "--workers must be at least 1" in capsys.readouterr().err


def test_the_app_cpu_of_several_workers_is_their_whole_process_tree() -> None:
    # a parent with a child with a grandchild, as the supervisor, nginx's master and its workers
    sleeper = "import time; time.sleep(30)"
    script = f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {sleeper!r}]); time.sleep(30)"
    parent = subprocess.Popen(
        [sys.executable, "-c", f"import subprocess, sys; subprocess.run([sys.executable, '-c', {script!r}])"]
    )
    try:
        deadline = time.monotonic() + 30
        while len(process_tree(parent.pid)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        tree = process_tree(parent.pid)
        assert len(tree) == 3 and tree[0] == parent.pid
        assert tree_cpu_seconds(tree) >= proc_cpu_seconds(parent.pid) > 0
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait()
        assert tree_cpu_seconds([gone.pid]) == 0.0  # a process that has ended counts 0
    finally:
        for pid in reversed(process_tree(parent.pid)):
            os.kill(pid, signal.SIGKILL)
        parent.wait()
