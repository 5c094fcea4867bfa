"""`python -m benchmarks.bench_cli [--votes N] [--quick]`: the command-line tools' wall time, process start to exit.

Runs `python -m arena leaderboard --format json --rounds 1000` on a SQLite file of N synthetic votes (default
1,000,000; `--quick`: 100,000; the file comes from benchmarks.synthetic_votes.votes_database, built once) as a
fresh process 5 times and takes the median wall time; the leaderboard's own computation (database read and fit,
as it reports them) is subtracted to show what starting the process and importing costs, and the CPU time is
kept beside the wall time to tell a slow program from a busy machine. The `--help` of
`export`, `prune`, `backup` and `python -m prompts` are timed the same way. Target (reported, not asserted):
the leaderboard in at most 0.6 s. Saves benchmarks/results/bench_cli.json; the last line printed is
`leaderboard_wall_s=W compute_s=C startup_s=S export_help_s=… prune_help_s=… backup_help_s=… prompts_help_s=…`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RUNS = 5
TARGET_S = 0.6
HELPS = {
    "export_help": ["-m", "arena", "export", "--help"],
    "prune_help": ["-m", "arena", "prune", "--help"],
    "backup_help": ["-m", "arena", "backup", "--help"],
    "prompts_help": ["-m", "prompts", "--help"],
}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wall(args: list[str]) -> tuple[float, float, str]:
    """Wall and CPU seconds of `python <args>` from start to exit, and what it printed; a failure stops the run.

    The CPU time tells a slow program from a busy machine (other processes sharing the cores)."""
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_DISABLE_TELEMETRY": "1"}
    cpu, start = _children_cpu(), time.perf_counter()
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    seconds, cpu = time.perf_counter() - start, _children_cpu() - cpu
    if done.returncode != 0:
        raise RuntimeError(f"python {' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
    return seconds, cpu, done.stdout


def leaderboard(db: Path, runs: int) -> dict[str, Any]:
    """Median wall, and median computation the leaderboard reports (database + fit), over `runs` processes."""
    walls, cpus, computes = [], [], []
    votes = 0
    for _ in range(runs):
        seconds, cpu, out = wall(
            ["-m", "arena", "leaderboard", "--format", "json", "--rounds", "1000", "--db", f"sqlite:///{db}"]
        )
        board = json.loads(out)
        walls.append(seconds)
        cpus.append(cpu)
        computes.append(board["db_seconds"] + board["fit_seconds"])
        votes = board["votes"]
    median, compute = statistics.median(walls), statistics.median(computes)
    return {
        "wall_s": round(median, 3),
        "cpu_s": round(statistics.median(cpus), 3),
        "compute_s": round(compute, 3),
        "startup_s": round(median - compute, 3),  # interpreter, imports, argument parsing, engine, output
        "walls_s": [round(w, 3) for w in walls],
        "votes_counted": votes,
    }


def measure(db: Path, runs: int = RUNS) -> dict[str, Any]:
    """Every figure of the benchmark on the database file `db`."""
    figures: dict[str, Any] = {"leaderboard": leaderboard(db, runs)}
    for name, args in HELPS.items():
        times = [wall(args)[:2] for _ in range(runs)]
        figures[name] = {
            "wall_s": round(statistics.median(w for w, _ in times), 3),
            "cpu_s": round(statistics.median(c for _, c in times), 3),
        }
    return figures


def headline(figures: dict[str, Any]) -> str:
    """The last line: the leaderboard's wall first, then its split and the --help walls."""
    board = figures["leaderboard"]
    parts = [f"leaderboard_wall_s={board['wall_s']}", f"compute_s={board['compute_s']}"]
    parts += [f"startup_s={board['startup_s']}"] + [f"{name}_s={figures[name]['wall_s']}" for name in HELPS]
    return " ".join(parts)


def main(argv: list[str] | None = None) -> int:
    """Build or reuse the votes file, time the commands, save, print the headline last."""
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--votes", type=int, help="votes in the database (default 1,000,000)")
    p.add_argument("--quick", action="store_true", help="100,000 votes instead of 1,000,000")
    p.add_argument("--runs", type=int, default=RUNS, help="processes per command (the median is reported)")
    args = p.parse_args(argv)
    from benchmarks.harness import machine, save
    from benchmarks.synthetic_votes import votes_database

    votes = args.votes or (100_000 if args.quick else 1_000_000)
    started = time.perf_counter()
    db = votes_database(votes)
    print(f"votes file ready in {time.perf_counter() - started:.1f} s: {db}", file=sys.stderr)
    figures = measure(db, args.runs)
    result = {"machine": machine(), "votes": votes, "runs": args.runs, "target_leaderboard_s": TARGET_S, **figures}
    print(json.dumps(result, indent=2))
    save("bench_cli", result)
    print(headline(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
