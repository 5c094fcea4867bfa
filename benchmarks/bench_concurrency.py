"""`python -m benchmarks.bench_concurrency`: 25 / 50 / 100 / 200 simultaneous battles (two streams each).

A synthetic TGI server (benchmarks/synthetic_tgi.py: 200 ms to the first token, 25 tokens/s per stream) serves
two `tgi` models (48 and 40 new tokens); app.py runs as a real process on top of it with
`arena.concurrency_limit` above the largest level and rate limits off (every client is 127.0.0.1). For each
level, first 2N streams are read straight from the synthetic server at once (the backend's own TTFT under that
load), then N battles start at once through the app's Gradio queue, each voting when both answers end.
Reported per level: TTFT overhead p50/p95 (app TTFT percentile minus backend-direct TTFT percentile), tokens
delivered (words in the final panes) / tokens generated (the synthetic server's count), errors, and CPU
(app, synthetic server and this client, in cores). Target at 100 battles (reported, not asserted): >= 0.95
delivered, 0 errors, p95 TTFT overhead <= 300 ms. Saves benchmarks/results/bench_concurrency.json; the last
line printed is `battles=100 delivered_ratio=R p95_ttft_overhead_ms=M p50_ttft_overhead_ms=P errors=E`.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import Rig, arena_rig, direct_stream, machine, ms, pct, proc_cpu_seconds, save

TTFT_MS = 200.0
TOKENS_PER_S = 25.0
TOKENS = {"syn-long": 48, "syn-short": 40}
LEVELS = (25, 50, 100, 200)
QUESTION = "How should a team compare two fine-tuned variants of the same model?"
HEADLINE = 100


async def level(rig: Rig, n: int) -> dict[str, Any]:
    """One concurrency level: direct streams, then battles through the app."""
    client, http, syn_url = rig.client, rig.http, rig.synthetic.url
    app_pid, syn_pid = rig.app.process.pid, rig.synthetic.process.pid
    sizes = list(TOKENS.values())
    direct = await asyncio.gather(*(direct_stream(syn_url, sizes[i % 2]) for i in range(2 * n)))
    direct_ttft = [t.first for t in direct if t.first is not None]
    await asyncio.sleep(0.5)
    await http.post(f"{syn_url}/stats/reset")
    cpu = (proc_cpu_seconds(app_pid), proc_cpu_seconds(syn_pid), time.process_time())
    start = time.perf_counter()
    battles = await asyncio.gather(*(client.battle(QUESTION) for _ in range(n)))
    wall = time.perf_counter() - start
    app_cpu = proc_cpu_seconds(app_pid) - cpu[0]
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
        "synthetic_cpu_cores": round(syn_cpu / wall, 2),
        "client_cpu_cores": round(own_cpu / wall, 2),
    }


async def measure(levels: tuple[int, ...], workdir: Path) -> dict[str, Any]:
    """All levels against one synthetic server and one app process."""
    rows = []
    limit = 2 * max(levels)
    async with arena_rig(
        workdir, ttft_ms=TTFT_MS, tokens_per_s=TOKENS_PER_S, tokens=TOKENS, concurrency_limit=limit
    ) as rig:
        await asyncio.gather(*(rig.client.battle(QUESTION) for _ in range(4)))  # warm-up
        for n in levels:
            row = await level(rig, n)
            print(row, flush=True)
            rows.append(row)
            await asyncio.sleep(1.0)
    return {
        "machine": machine(),
        "synthetic_backend": {"ttft_ms": TTFT_MS, "tokens_per_s": TOKENS_PER_S, "max_new_tokens": TOKENS},
        "app": {"concurrency_limit": 2 * max(levels), "max_concurrent_per_endpoint": 1024, "rate_limits": "off"},
        "note": "app, synthetic server and this client share the machine's cores",
        "levels": rows,
        "targets": {"at": HEADLINE, "delivered_ratio": ">= 0.95", "errors": 0, "p95_ttft_overhead_ms": "<= 300"},
    }


def main(argv: list[str] | None = None) -> int:
    """Measure, print, save; the last line holds the figures at 100 battles."""
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--levels", type=int, nargs="+", default=list(LEVELS), help="simultaneous battles per level")
    p.add_argument("--quick", action="store_true", help="levels 25 and 100 only")
    args = p.parse_args(argv)
    levels = (25, HEADLINE) if args.quick else tuple(args.levels)
    with tempfile.TemporaryDirectory(prefix="bench-concurrency-") as tmp:
        result = asyncio.run(measure(levels, Path(tmp)))
    path = save("bench_concurrency", result)
    print(f"machine: {result['machine']}")
    print(f"saved {path.relative_to(path.parents[2])}")
    head = next((r for r in result["levels"] if r["battles"] == HEADLINE), result["levels"][-1])
    print(
        f"battles={head['battles']} delivered_ratio={head['delivered_ratio']} "
        f"p95_ttft_overhead_ms={head['p95_ttft_overhead_ms']} p50_ttft_overhead_ms={head['p50_ttft_overhead_ms']} "
        f"errors={head['errors']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
