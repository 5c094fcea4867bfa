"""`python -m benchmarks.bench_export [--votes N] [--quick]`: votes → `dpo` JSONL, rows/s and peak memory.

Fills a SQLite file with N synthetic one-round battles (default 1,000,000; `--quick`: 100,000), then runs the export
in a fresh child process so that its peak resident memory is the export's own (ru_maxrss). Targets: at least
50,000 rows/s and at most 300 MB at 1M votes. Saves benchmarks/results/bench_export.json; the last line printed is
`rows=N rows_per_s=R peak_rss_mb=M`.
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

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "bench_export.json"


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


def measure(db: Path, out: Path, fmt: str = "dpo") -> dict[str, float]:
    """The figures of one export of `db`, run in a child process."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_export", "--child", str(db), str(out), fmt],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def main(argv: list[str] | None = None) -> int:
    """Fill, export, report."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--votes", type=int)
    p.add_argument("--quick", action="store_true", help="100,000 votes instead of 1,000,000")
    p.add_argument("--child", nargs=3, metavar=("DB", "OUT", "FORMAT"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]), args.child[2])
        return 0
    from arena.store.engine import make_engine
    from arena.store.migrate import upgrade
    from benchmarks.synthetic_votes import fill_votes

    votes = args.votes or (100_000 if args.quick else 1_000_000)
    with tempfile.TemporaryDirectory(prefix="corral-bench-export-") as tmp:
        db, out = Path(tmp) / "votes.db", Path(tmp) / "dpo.jsonl"
        engine = make_engine(f"sqlite:///{db}")
        upgrade(engine)
        started = time.perf_counter()
        fill_votes(engine, votes)
        fill_seconds = time.perf_counter() - started
        engine.dispose()
        print(f"filled {votes:,} votes in {fill_seconds:.1f} s", file=sys.stderr)
        figures = measure(db, out)
    rows_per_s = figures["rows"] / figures["seconds"]
    result = {
        "votes": votes,
        "format": "dpo",
        "file": "jsonl",
        **figures,
        "rows_per_s": round(rows_per_s),
        "votes_per_s": round(figures["votes"] / figures["seconds"]),
        "targets": {"rows_per_s": 50_000, "peak_rss_mb": 300},
        "fill_seconds": round(fill_seconds, 1),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    print(f"rows={figures['rows']} rows_per_s={rows_per_s:.0f} peak_rss_mb={figures['peak_rss_mb']:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
