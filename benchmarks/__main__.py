"""`python -m benchmarks [--quick] [NAME …]` (or `make bench`): run every benchmark, then write results/SUMMARY.md.

Each benchmark runs as its own process (`python -m benchmarks.<name>`), saves its JSON under benchmarks/results/
and ends its output with a line of `key=value` headline figures; the summary collects those lines with the
machine they were measured on. `--quick` passes `--quick` to the benchmarks that take it and skips the slow
ones that do not (the existing full runs take minutes each); names select benchmarks (e.g. `stream votes`).
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.harness import RESULTS, ROOT, machine


@dataclass(frozen=True)
class Bench:
    """One benchmark module and how --quick treats it."""

    name: str
    what: str
    quick_flag: bool  # takes --quick
    in_quick: bool = True  # run at all under --quick


BENCHES = (
    Bench("stream", "app vs backend-direct TTFT and token gaps; battle wall vs slower side", quick_flag=True),
    Bench(
        "concurrency",
        "25/50/100/200 simultaneous battles: TTFT overhead, delivery, errors, CPU per token; capacity at 300 ms",
        quick_flag=True,
    ),
    Bench("votes", "16 concurrent writers: votes/s, lost and duplicates (SQLite, PostgreSQL)", quick_flag=True),
    Bench("export", "1M votes (--quick: 100k) → dpo JSONL: rows/s and peak RSS of the export process", quick_flag=True),
    Bench("leaderboard", "full leaderboard from SQLite at 10k/100k/1M votes", quick_flag=False, in_quick=False),
    Bench("cli", "`arena leaderboard` at 1M votes (--quick: 100k), `--help`s: start to exit", quick_flag=True),
    Bench("sampling", "votes to a stable ranking, uniform vs active pairing", quick_flag=False, in_quick=False),
    Bench("serve", "backends.serve streaming vs in-process generate; adapter memory", quick_flag=False, in_quick=False),
    Bench("weights", "apply-delta peak memory and throughput", quick_flag=False, in_quick=False),
    Bench("local", "default model + LoRA: one stream vs a base+adapter pair tok/s; serve at 1/2/4", quick_flag=True),
    Bench("loop", "votes → DPO → LoRA on the default model: new variant's win rate", quick_flag=False, in_quick=False),
    Bench(
        "autobattle",
        "automatic battles judged per minute (concurrency 8); people's TTFT overhead with judging vs without",
        quick_flag=False,
        in_quick=False,
    ),
)


@dataclass
class Outcome:
    """What one run printed last, how long it took, and whether it worked."""

    bench: Bench
    seconds: float
    code: int
    headline: str


def available(bench: Bench) -> bool:
    """Whether the module exists (bench_export is written separately)."""
    return importlib.util.find_spec(f"benchmarks.bench_{bench.name}") is not None


def run(bench: Bench, quick: bool, logs: Path) -> Outcome:
    """Run one benchmark as a process, echoing its output, keeping its last line."""
    cmd = [sys.executable, "-m", f"benchmarks.bench_{bench.name}"]
    if quick and bench.quick_flag:
        cmd.append("--quick")
    print(f"\n=== {bench.name}: {' '.join(cmd[1:])}", flush=True)
    start = time.perf_counter()
    lines: list[str] = []
    with subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            print(line, end="", flush=True)
            lines.append(line.rstrip("\n"))
        code = proc.wait()
    (logs / f"bench_{bench.name}.log").write_text("\n".join(lines) + "\n")
    headline = next((ln for ln in reversed(lines) if "=" in ln and " " not in ln.split("=", 1)[0]), "")
    return Outcome(bench, time.perf_counter() - start, code, headline if code == 0 else f"failed (exit {code})")


def summary(outcomes: list[Outcome], quick: bool) -> str:
    """The markdown summary."""
    m = machine()
    rows = [f"| `{o.bench.name}` | {o.bench.what} | `{o.headline}` | {o.seconds:.0f} s |" for o in outcomes]
    return "\n".join(
        [
            "# Benchmark summary",
            "",
            f"Machine: {m['cores']} cores ({m['cpu']}), {m['ram_gib']} GiB RAM, no GPU; Python {m['python']}; "
            f"{m['date']}.",
            f"Command: `python -m benchmarks{' --quick' if quick else ''}` (`make bench`). "
            "Every figure is also in `benchmarks/results/<benchmark>.json`; the synthetic backend is "
            "`benchmarks/synthetic_tgi.py` (benchmarks only).",
            "",
            "| benchmark | measures | headline (last line) | run time |",
            "|---|---|---|---|",
            *rows,
            "",
            "Targets (reported, not asserted): TTFT overhead p50 <= 30 ms; battle wall / max(sides) <= 1.1; at 100 "
            "battles >= 0.95 of generated tokens delivered, 0 errors, p95 TTFT overhead <= 300 ms; >= 1,000 votes/s "
            "on SQLite with 0 lost.",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmarks in order and write the summary; exit 1 if any failed."""
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=(__doc__ or "").splitlines()[0])
    p.add_argument("names", nargs="*", help=f"benchmarks to run (default: all): {', '.join(b.name for b in BENCHES)}")
    p.add_argument("--quick", action="store_true", help="short runs; skips leaderboard, sampling, serve, weights")
    args = p.parse_args(argv)
    unknown = set(args.names) - {b.name for b in BENCHES}
    if unknown:
        p.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    if args.names:
        chosen = [b for b in BENCHES if b.name in args.names]
    else:
        chosen = [b for b in BENCHES if b.in_quick or not args.quick]
    logs = RESULTS / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    outcomes = []
    for bench in chosen:
        if not available(bench):
            print(f"\n=== {bench.name}: not present, skipped")
            continue
        outcomes.append(run(bench, args.quick, logs))
    text = summary(outcomes, args.quick)
    (RESULTS / "SUMMARY.md").write_text(text)
    print("\n" + text)
    return 1 if any(o.code for o in outcomes) else 0


if __name__ == "__main__":
    raise SystemExit(main())
