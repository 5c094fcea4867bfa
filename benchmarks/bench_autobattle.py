"""`python -m benchmarks.bench_autobattle`: judged automatic battles per minute, and what judging costs people.

A SYNTHETIC TGI server (benchmarks/synthetic_tgi.py: 200 ms to the first token, 25 tokens/s per stream; a judging
prompt is answered with a verdict mark) serves three `tgi` models: two contestants (48 and 40 new tokens) and a
judge (16 new tokens, swap on). app.py runs on top of it as in bench_concurrency. Then, several times in
alternation, the same level of people's battles (default 25 at once, through the app's Gradio queue) is measured
without and with `python -m arena autobattle --judge syn-judge --concurrency 8` running against the app's own
config and database (a separate process, sharing the machine's cores; its CPU during the level is recorded).
Reported: judged battles per minute (from the autobattle runs' own summaries) and the ratio of the people's TTFT
overhead (median over runs of the p50) with judging to without. Target: the ratio at most 1.10.

Saves benchmarks/results/bench_autobattle.json; the last line printed is
`judged_per_min=J human_ttft_overhead_ratio=R`.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_concurrency import QUESTION, TOKENS_PER_S, TTFT_MS, level
from benchmarks.harness import (
    ROOT,
    GradioQueueClient,
    Rig,
    arena_config,
    machine,
    own_client,
    proc_cpu_seconds,
    save,
    start_arena,
    start_synthetic,
)

TOKENS = {"syn-long": 48, "syn-short": 40, "syn-judge": 16}
JUDGE = {
    "name": "syn-judge",
    "model": "syn-judge",
    "generation": {"max_new_tokens": 16, "do_sample": False},
    "concurrency": 8,  # the judge's own limit (default 2) would otherwise bound the run, not --concurrency 8
}
CONCURRENCY = 8
TARGET_RATIO = 1.10
_JUDGED = re.compile(r"Judged ([\d,]+) in (\d+) s \(([\d.]+) a minute\)")


def autobattle(config_file: Path, db_url: str, battles: int, seed: int) -> subprocess.Popen[str]:
    """Start an automatic run against the app's config and database."""
    cmd = [sys.executable, "-m", "arena", "autobattle", "--config", str(config_file), "--db", db_url]
    cmd += ["--judge", "syn-judge", "--battles", str(battles), "--concurrency", str(CONCURRENCY)]
    cmd += ["--seed", str(seed), "--quiet"]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


async def measure(workdir: Path, *, people: int, runs: int, battles: int) -> dict[str, Any]:
    """Alternate the people's level without and with an automatic run; collect both and the run summaries."""
    synthetic = start_synthetic(workdir, ttft_ms=TTFT_MS, tokens_per_s=TOKENS_PER_S)
    config = {**arena_config(synthetic.url, TOKENS, concurrency_limit=4 * people), "judges": [JUDGE]}
    app = start_arena(config, workdir / "app")
    config_file = workdir / "app" / "config.yaml"
    alone: list[dict[str, Any]] = []
    judged: list[dict[str, Any]] = []
    summaries: list[dict[str, Any]] = []
    try:
        async with own_client() as http:
            client = GradioQueueClient(app.url, http)
            await client.connect()
            rig = Rig(synthetic, app, http, client)
            await asyncio.gather(*(client.battle(QUESTION) for _ in range(4)))  # warm-up
            for run in range(runs):
                alone.append(await level(rig, people))
                print({"judging": False, **alone[-1]}, flush=True)
                process = autobattle(config_file, app.db_url, battles, seed=run)
                await asyncio.sleep(3.0)  # the run has loaded its config and is judging
                cpu, start = proc_cpu_seconds(process.pid), time.perf_counter()
                row = await level(rig, people)
                busy = (proc_cpu_seconds(process.pid) - cpu) / (time.perf_counter() - start)
                judged.append({**row, "autobattle_cpu_cores": round(busy, 2), "still_running": process.poll() is None})
                print({"judging": True, **judged[-1]}, flush=True)
                out, err = await asyncio.to_thread(process.communicate)
                found = _JUDGED.search(out)
                summaries.append(
                    {
                        "returncode": process.returncode,
                        "judged": int(found.group(1).replace(",", "")) if found else 0,
                        "seconds": int(found.group(2)) if found else None,
                        "judged_per_min": float(found.group(3)) if found else 0.0,
                        "summary": out.strip().splitlines(),
                        "stderr_tail": err.strip().splitlines()[-3:],
                    }
                )
                print(summaries[-1], flush=True)
    finally:
        app.stop()
        synthetic.stop()
    base = statistics.median(r["p50_ttft_overhead_ms"] for r in alone)
    loaded = statistics.median(r["p50_ttft_overhead_ms"] for r in judged)
    return {
        "machine": machine(),
        "synthetic_backend": {"ttft_ms": TTFT_MS, "tokens_per_s": TOKENS_PER_S, "max_new_tokens": TOKENS},
        "judge": JUDGE,
        "people_battles_per_level": people,
        "autobattle": {"battles_per_run": battles, "concurrency": CONCURRENCY, "runs": summaries},
        "without_judging": alone,
        "with_judging": judged,
        "judged_per_min": round(statistics.median(s["judged_per_min"] for s in summaries), 1),
        "p50_ttft_overhead_ms": {"without": base, "with": loaded},
        "human_ttft_overhead_ratio": round(loaded / base, 3) if base else None,
        "target": {"human_ttft_overhead_ratio": f"<= {TARGET_RATIO}"},
        "note": "app, synthetic server, autobattle process and this client share the machine's cores",
    }


def main(argv: list[str] | None = None) -> int:
    """Measure, print, save; the last line holds judged battles per minute and the TTFT overhead ratio."""
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--people", type=int, default=25, help="people's battles at once in each measured level")
    p.add_argument("--runs", type=int, default=3, help="alternations of without / with judging")
    p.add_argument("--battles", type=int, default=120, help="automatic battles per run")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-autobattle-") as tmp:
        result = asyncio.run(measure(Path(tmp), people=args.people, runs=args.runs, battles=args.battles))
    path = save("bench_autobattle", result)
    print(f"machine: {result['machine']}")
    print(f"p50 TTFT overhead without / with judging: {result['p50_ttft_overhead_ms']}")
    print(f"saved {path.relative_to(path.parents[2])}")
    print(f"judged_per_min={result['judged_per_min']} human_ttft_overhead_ratio={result['human_ttft_overhead_ratio']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
