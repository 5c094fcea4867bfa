"""`python -m benchmarks.bench_export [--votes N] [--quick]`: votes → training rows, rows/s and peak memory.

Reads SQLite files of synthetic votes (benchmarks.synthetic_votes.votes_database: built once, then reused; 20
models) and exports them, each export in a fresh child process so that its peak resident memory is the export's
own (ru_maxrss). Cases, at N votes (default 1,000,000; `--quick`: 100,000):
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
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import machine, save

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"rows_per_s": 50_000, "peak_rss_mb": 300}


def child(db: Path, out: Path, fmt: str) -> None:
    """Run one export and print its figures as JSON (in its own process)."""
    from arena.export.formats import Judges
    from arena.export.run import EXPORT_FILTER, export
    from arena.store.engine import make_engine

    engine = make_engine(f"sqlite:///{db}")
    started = time.perf_counter()
    summary = export(engine, fmt, out, EXPORT_FILTER, judges=Judges(b"benchmark-key-0123456789"))
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    figures = {"rows": summary.rows, "votes": summary.read, "seconds": seconds, "peak_rss_mb": peak_mb}
    print(json.dumps({**figures, "skipped": dict(summary.skipped), "bytes": out.stat().st_size}))


def measure(db: Path, out: Path, fmt: str = "dpo") -> dict[str, Any]:
    """The figures of one export of `db`, run in a child process."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_export", "--child", str(db), str(out), fmt],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    figures["rows_per_s"] = round(figures["rows"] / figures["seconds"])
    figures["votes_per_s"] = round(figures["votes"] / figures["seconds"])
    return figures


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
    p.add_argument("--child", nargs=3, metavar=("DB", "OUT", "FORMAT"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]), args.child[2])
        return 0
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
