"""`python -m benchmarks.bench_concurrency`: 25 / 50 / 100 / 200 simultaneous battles (two streams each).

A synthetic TGI server (benchmarks/synthetic_tgi.py: 200 ms to the first token, 25 tokens/s per stream) serves
two `tgi` models (48 and 40 new tokens); app.py runs as a real process on top of it with
`arena.concurrency_limit` above the largest level and rate limits off (every client is 127.0.0.1). For each
level, first 2N streams are read straight from the synthetic server at once (the backend's own TTFT under that
load), then N battles start at once through the app's Gradio queue, each voting when both answers end.
Reported per level: TTFT overhead p50/p95 (app TTFT percentile minus backend-direct TTFT percentile), tokens
delivered (words in the final panes) / tokens generated (the synthetic server's count), errors, and CPU
(app, synthetic server and this client, in cores), and the app's CPU milliseconds per battle and per token
delivered (the app process's CPU time over the level, vote included, divided by battles and by tokens).
Target at 100 battles (reported, not asserted): >= 0.95 delivered, 0 errors, p95 TTFT overhead <= 300 ms.

Capacity: the largest number of simultaneous battles that meets that target (benchmarks/capacity.py). After
the levels above, a few more levels are measured on the same app: down by halving while the smallest level
fails (to 1; capacity 0 if even one battle fails), then by bisection between the largest passing level and
the smallest failing one. `--workers N` measures `app.py --workers N` (N app processes behind nginx, each
battle's requests kept on one process by nginx's cookie, as a browser's are); the app's CPU is then that of the
whole process tree. Saves benchmarks/results/bench_concurrency.json (bench_concurrency_N_workers.json for N > 1);
the last line printed is
`battles=100 delivered_ratio=R p95_ttft_overhead_ms=M p50_ttft_overhead_ms=P errors=E capacity_at_300ms=C
cpu_ms_per_token=T`.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.capacity import Capacity, find_capacity
from benchmarks.harness import (
    Rig,
    arena_rig,
    direct_stream,
    machine,
    ms,
    pct,
    proc_cpu_seconds,
    process_tree,
    save,
    tree_cpu_seconds,
)

TTFT_MS = 200.0
TOKENS_PER_S = 25.0
TOKENS = {"syn-long": 48, "syn-short": 40}
LEVELS = (25, 50, 100, 200)
QUESTION = "How should a team compare two fine-tuned variants of the same model?"
HEADLINE = 100
TARGET = {"p95_ttft_overhead_ms": 300.0, "delivered_ratio": 0.95, "errors": 0}
EXTRA_RUNS = 6  # levels measured by the capacity search beyond the ladder


async def level(rig: Rig, n: int) -> dict[str, Any]:
    """One concurrency level: direct streams, then battles through the app."""
    client, http, syn_url = rig.client, rig.http, rig.synthetic.url
    app_pids, syn_pid = process_tree(rig.app.process.pid), rig.synthetic.process.pid  # with workers: nginx too
    sizes = list(TOKENS.values())
    direct = await asyncio.gather(*(direct_stream(syn_url, sizes[i % 2]) for i in range(2 * n)))
    direct_ttft = [t.first for t in direct if t.first is not None]
    await asyncio.sleep(0.5)
    await http.post(f"{syn_url}/stats/reset")
    cpu = (tree_cpu_seconds(app_pids), proc_cpu_seconds(syn_pid), time.process_time())
    start = time.perf_counter()
    battles = await asyncio.gather(*(client.battle(QUESTION) for _ in range(n)))
    wall = time.perf_counter() - start
    app_cpu = tree_cpu_seconds(app_pids) - cpu[0]
    syn_cpu = proc_cpu_seconds(syn_pid) - cpu[1]
    own_cpu = time.process_time() - cpu[2]
    stats = (await http.get(f"{syn_url}/stats")).json()
    app_ttft = [s.first for b in battles for s in b.sides if s.first is not None]
    delivered = sum(s.tokens for b in battles for s in b.sides)
    errors = [b.error for b in battles if b.error]
    p50 = {k: pct(v, 50) for k, v in (("app", app_ttft), ("direct", direct_ttft))}
    p95 = {k: pct(v, 95) for k, v in (("app", app_ttft), ("direct", direct_ttft))}
    return {
        "battles": n,
        "streams": 2 * n,
        "direct_ttft_p50_ms": ms(p50["direct"]),
        "direct_ttft_p95_ms": ms(p95["direct"]),
        "app_ttft_p50_ms": ms(p50["app"]),
        "app_ttft_p95_ms": ms(p95["app"]),
        "p50_ttft_overhead_ms": ms((p50["app"] or 0) - (p50["direct"] or 0)),
        "p95_ttft_overhead_ms": ms((p95["app"] or 0) - (p95["direct"] or 0)),
        "panes_without_text": 2 * n - len(app_ttft),
        "tokens_generated": stats["tokens_sent"],
        "tokens_delivered": delivered,
        "delivered_ratio": round(delivered / stats["tokens_sent"], 4) if stats["tokens_sent"] else 0.0,
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:3],
        "votes_recorded": sum(b.voted for b in battles),
        "wall_s": round(wall, 2),
        "battle_wall_p50_ms": ms(pct([b.wall for b in battles if b.wall is not None], 50)),
        "app_cpu_cores": round(app_cpu / wall, 2),
        "app_cpu_ms_per_battle": round(app_cpu * 1000 / n, 2),
        "app_cpu_ms_per_token": round(app_cpu * 1000 / delivered, 3) if delivered else None,
        "synthetic_cpu_cores": round(syn_cpu / wall, 2),
        "client_cpu_cores": round(own_cpu / wall, 2),
    }


def meets_target(row: dict[str, Any]) -> bool:
    """Whether a level meets the capacity target: p95 TTFT overhead, delivery and no errors."""
    p95 = row["p95_ttft_overhead_ms"]
    return (
        p95 is not None
        and p95 <= TARGET["p95_ttft_overhead_ms"]
        and row["delivered_ratio"] >= TARGET["delivered_ratio"]
        and row["errors"] <= TARGET["errors"]
    )


async def measure(levels: tuple[int, ...], workdir: Path, *, workers: int) -> dict[str, Any]:
    """All levels, then the capacity search, against one synthetic server and one app process."""
    rows: dict[int, dict[str, Any]] = {}
    limit = 2 * max(levels)

    async with arena_rig(
        workdir, ttft_ms=TTFT_MS, tokens_per_s=TOKENS_PER_S, tokens=TOKENS, concurrency_limit=limit, workers=workers
    ) as rig:

        async def probe(n: int) -> dict[str, Any]:
            row = await level(rig, n)
            print(row, flush=True)
            await asyncio.sleep(1.0)
            return row

        await asyncio.gather(*(rig.client.battle(QUESTION) for _ in range(4)))  # warm-up
        for n in levels:
            rows[n] = await probe(n)
        search: Capacity[dict[str, Any]] = await find_capacity(probe, meets_target, rows, extra_runs=EXTRA_RUNS)
    return {
        "machine": machine(),
        "workers": workers,
        "synthetic_backend": {"ttft_ms": TTFT_MS, "tokens_per_s": TOKENS_PER_S, "max_new_tokens": TOKENS},
        "app": {"concurrency_limit": limit, "max_concurrent_per_endpoint": 1024, "rate_limits": "off"},
        "note": (
            "app, synthetic server and this client share the machine's cores; app CPU is every app process's "
            "(with --workers: the supervisor, the workers and nginx)"
        ),
        "levels": [rows[n] for n in levels],
        "capacity": {
            "target": TARGET,
            "capacity_at_300ms": search.capacity,
            "levels_tried": search.tried,
            "passed": {n: meets_target(r) for n, r in search.results.items()},
            "exact": search.exact,
            "at_least": search.above_ladder,
            "search_levels": [search.results[n] for n in search.tried if n not in rows],
        },
        "targets": {"at": HEADLINE, "delivered_ratio": ">= 0.95", "errors": 0, "p95_ttft_overhead_ms": "<= 300"},
    }


def headline(result: dict[str, Any]) -> str:
    """The last line: the figures at 100 battles (else the largest level) and the capacity."""
    head = next((r for r in result["levels"] if r["battles"] == HEADLINE), result["levels"][-1])
    return (
        f"battles={head['battles']} delivered_ratio={head['delivered_ratio']} "
        f"p95_ttft_overhead_ms={head['p95_ttft_overhead_ms']} p50_ttft_overhead_ms={head['p50_ttft_overhead_ms']} "
        f"errors={head['errors']} capacity_at_300ms={result['capacity']['capacity_at_300ms']} "
        f"cpu_ms_per_token={head['app_cpu_ms_per_token']}"
    )


def main(argv: list[str] | None = None) -> int:
    """Measure, print, save; the last line holds the figures at 100 battles and the capacity."""
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--levels", type=int, nargs="+", default=list(LEVELS), help="simultaneous battles per level")
    p.add_argument("--quick", action="store_true", help="levels 25 and 100 only (then the capacity search)")
    p.add_argument("--workers", type=int, default=1, help="app processes (app.py --workers N, behind nginx if > 1)")
    args = p.parse_args(argv)
    if args.workers < 1:
        p.error("--workers must be at least 1")
    if min(args.levels) < 1:
        p.error("--levels must be at least 1")
    levels = (25, HEADLINE) if args.quick else tuple(sorted(set(args.levels)))
    with tempfile.TemporaryDirectory(prefix="bench-concurrency-") as tmp:
        result = asyncio.run(measure(levels, Path(tmp), workers=args.workers))
    path = save("bench_concurrency" if args.workers == 1 else f"bench_concurrency_{args.workers}_workers", result)
    cap = result["capacity"]
    print(f"machine: {result['machine']}")
    print(f"workers: {result['workers']}")
    print(f"capacity levels tried: {cap['levels_tried']} passed: {cap['passed']}")
    print(f"saved {path.relative_to(path.parents[2])}")
    print(headline(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
