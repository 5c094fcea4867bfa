"""`python -m benchmarks.bench_export [--votes N] [--quick]`: votes → training rows, rows/s and peak memory.

Reads SQLite files of synthetic votes (benchmarks.synthetic_votes.votes_database: built once, then reused; 20
models) and exports them with `python -m arena export … --quiet`, each in its own process: time from process
start to exit (imports included), and that process's peak resident memory (ru_maxrss). Cases, at N votes
(default 1,000,000; `--quick`: 100,000):
- `dpo` to JSON Lines from one-round battles: the headline;
- `dpo` to JSON Lines from battles of three rounds, every round voted (the prompt carries the earlier rounds);
- `dpo` to Parquet from one-round battles;
- `dpo` to JSON Lines at a tenth of N, to show that memory stays flat as the votes grow.
Targets (reported, not asserted): at least 50,000 rows/s and at most 300 MB for the headline at 1M votes.
Saves benchmarks/results/bench_export.json; the last line printed is `rows=N rows_per_s=R peak_rss_mb=M`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import machine, save

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"rows_per_s": 50_000, "peak_rss_mb": 300}


def measure(db: Path, out: Path, fmt: str = "dpo") -> dict[str, Any]:
    """The figures of `python -m arena export` on `db`, as a user runs it: its own process, start to exit."""
    env = {**os.environ, "CORRAL_IP_SALT": "benchmark-salt-0123456789abcdef", "CORRAL_DATA_DIR": str(out.parent)}
    command = [sys.executable, "-m", "arena", "export", "--format", fmt, "--out", str(out)]
    command += ["--db", f"sqlite:///{db}", "--quiet"]
    started = time.perf_counter()
    with subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True) as process:
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        summary = process.stderr.read() if process.stderr else ""
    if process.returncode != 0:
        raise RuntimeError(f"export failed: {summary.strip()}")
    rows = int(re.search(r"Wrote ([\d,]+) ", summary).group(1).replace(",", ""))  # type: ignore[union-attr]
    read = int(re.search(r"from ([\d,]+) record", summary).group(1).replace(",", ""))  # type: ignore[union-attr]
    return {
        "rows": rows,
        "votes": read,
        "seconds": round(seconds, 3),
        "rows_per_s": round(rows / seconds),
        "votes_per_s": round(read / seconds),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # KiB on Linux
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "bytes": out.stat().st_size,
        "summary": summary.strip().splitlines(),
    }


def cases(votes: int) -> dict[str, tuple[int, int, str]]:
    """Name → (votes, rounds per battle, output suffix) of every export measured."""
    return {
        "dpo_jsonl": (votes, 1, ".jsonl"),
        "dpo_jsonl_3_rounds": (votes, 3, ".jsonl"),
        "dpo_parquet": (votes, 1, ".parquet"),
        "dpo_jsonl_tenth": (votes // 10, 1, ".jsonl"),
    }


def main(argv: list[str] | None = None) -> int:
    """Build (or reuse) the databases, export, report."""
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--votes", type=int)
    p.add_argument("--quick", action="store_true", help="100,000 votes instead of 1,000,000")
    args = p.parse_args(argv)
    from benchmarks.synthetic_votes import votes_database

    votes = args.votes or (100_000 if args.quick else 1_000_000)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="corral-bench-export-") as tmp:
        for name, (n, rounds, suffix) in cases(votes).items():
            started = time.perf_counter()
            db = votes_database(n, rounds=rounds)
            built = time.perf_counter() - started
            figures = measure(db, Path(tmp) / f"{name}{suffix}")
            results[name] = {"votes_in_db": n, "rounds": rounds, **figures, "db_ready_s": round(built, 1)}
            print(
                f"{name}: {figures['rows']:,} rows, {figures['rows_per_s']:,} rows/s, "
                f"{figures['peak_rss_mb']:.0f} MB peak",
                file=sys.stderr,
            )
            (Path(tmp) / f"{name}{suffix}").unlink()
    head = results["dpo_jsonl"]
    result = {
        "machine": machine(),
        "votes": votes,
        "headline": "dpo_jsonl",
        "cases": results,
        "memory_growth_mb": round(head["peak_rss_mb"] - results["dpo_jsonl_tenth"]["peak_rss_mb"], 1),
        "targets": TARGETS,
    }
    path = save("bench_export", result)
    print(json.dumps(result, indent=2))
    print(f"saved {path.relative_to(ROOT)}")
    print(f"rows={head['rows']} rows_per_s={head['rows_per_s']} peak_rss_mb={head['peak_rss_mb']:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
