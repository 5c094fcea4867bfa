"""`python -m benchmarks.bench_stream`: what the app adds to a backend's stream, one battle at a time.

A synthetic TGI server (benchmarks/synthetic_tgi.py: 200 ms to the first token, 40 tokens/s) serves two `tgi`
models (64 and 48 new tokens); app.py runs as a real process on top of it. The same async client measures
(1) both answers read straight from the synthetic server at once, and (2) battles through the app's Gradio
queue (HTTP + server-sent events, as a browser): time to first token per pane, gaps between pane updates that
added text, tokens per update, and the battle's wall time against the slower side read directly.
Targets (reported, not asserted): TTFT overhead p50 <= 30 ms; battle wall / max(side A, side B) <= 1.1.
Saves benchmarks/results/bench_stream.json; the last line printed is
`ttft_overhead_p50_ms=O wall_ratio=W direct_ttft_p50_ms=D app_ttft_p50_ms=A app_gap_p50_ms=G tokens_per_update=T`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.harness import SideTrace, arena_rig, direct_stream, machine, ms, pct, proc_cpu_seconds, save

TTFT_MS = 200.0
TOKENS_PER_S = 40.0
TOKENS = {"syn-long": 64, "syn-short": 48}
QUESTION = "How should a team compare two fine-tuned variants of the same model?"


def summary(sides: Sequence[SideTrace]) -> dict[str, Any]:
    """TTFT and gap percentiles over a set of streams."""
    firsts = [s.first for s in sides if s.first is not None]
    gaps = [g for s in sides for g in s.gaps()]
    updates = sum(len(s.updates) for s in sides)
    tokens = sum(s.tokens for s in sides)
    return {
        "streams": len(sides),
        "ttft_p50_ms": ms(pct(firsts, 50)),
        "ttft_p95_ms": ms(pct(firsts, 95)),
        "gap_p50_ms": ms(pct(gaps, 50)),
        "gap_p95_ms": ms(pct(gaps, 95)),
        "gap_max_ms": ms(max(gaps) if gaps else None),
        "tokens": tokens,
        "updates": updates,
        "tokens_per_update": round(tokens / updates, 2) if updates else None,
    }


async def measure(rounds: int, workdir: Path) -> dict[str, Any]:
    """Run the direct and the app measurements; return the result document."""
    async with arena_rig(
        workdir, ttft_ms=TTFT_MS, tokens_per_s=TOKENS_PER_S, tokens=TOKENS, concurrency_limit=64
    ) as rig:
        syn_url, client = rig.synthetic.url, rig.client
        for _ in range(2):  # warm-up: connections, lingua, first Gradio render
            await asyncio.gather(*(direct_stream(syn_url, n) for n in TOKENS.values()))
            await client.battle(QUESTION)
        direct: dict[int, list[SideTrace]] = {n: [] for n in TOKENS.values()}
        for _ in range(rounds):
            pair = await asyncio.gather(*(direct_stream(syn_url, n) for n in TOKENS.values()))
            for n, trace in zip(TOKENS.values(), pair, strict=True):
                direct[n].append(trace)
        slowest = max(statistics.median(t.last or 0.0 for t in traces) for traces in direct.values())
        cpu0 = proc_cpu_seconds(rig.app.process.pid)
        battles = [await client.battle(QUESTION) for _ in range(rounds)]
        app_cpu = proc_cpu_seconds(rig.app.process.pid) - cpu0
    errors = [b.error for b in battles if b.error]
    direct_all = [t for traces in direct.values() for t in traces]
    app_all = [s for b in battles for s in b.sides]
    d, a = summary(direct_all), summary(app_all)
    walls = [b.wall for b in battles if b.wall is not None]
    ratios = [w / slowest for w in walls]
    overhead = [
        (s.first or 0.0) - statistics.median(t.first or 0.0 for t in direct_all) for s in app_all if s.first is not None
    ]
    return {
        "machine": machine(),
        "synthetic_backend": {"ttft_ms": TTFT_MS, "tokens_per_s": TOKENS_PER_S, "max_new_tokens": TOKENS},
        "rounds": rounds,
        "direct": d,
        "app": a,
        "ttft_overhead_p50_ms": ms(pct(overhead, 50)),
        "ttft_overhead_p95_ms": ms(pct(overhead, 95)),
        "slowest_side_direct_ms": ms(slowest),
        "battle_wall_p50_ms": ms(pct(walls, 50)),
        "wall_ratio_p50": round(pct(ratios, 50) or 0.0, 3),
        "wall_ratio_max": round(max(ratios), 3) if ratios else None,
        "app_cpu_seconds_per_battle": round(app_cpu / max(1, rounds), 3),
        "errors": len(errors),
        "error_samples": errors[:3],
        "targets": {"ttft_overhead_p50_ms": "<= 30", "wall_ratio": "<= 1.1"},
    }


def main(argv: list[str] | None = None) -> int:
    """Measure, print, save; the last line holds the headline figures."""
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--rounds", type=int, default=12, help="battles (and direct pairs) measured")
    p.add_argument("--quick", action="store_true", help="4 rounds")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-stream-") as tmp:
        result = asyncio.run(measure(4 if args.quick else args.rounds, Path(tmp)))
    path = save("bench_stream", result)
    for key, value in result.items():
        print(f"{key}: {value}")
    print(f"saved {path.relative_to(path.parents[2])}")
    print(
        f"ttft_overhead_p50_ms={result['ttft_overhead_p50_ms']} wall_ratio={result['wall_ratio_p50']} "
        f"direct_ttft_p50_ms={result['direct']['ttft_p50_ms']} app_ttft_p50_ms={result['app']['ttft_p50_ms']} "
        f"app_gap_p50_ms={result['app']['gap_p50_ms']} tokens_per_update={result['app']['tokens_per_update']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
