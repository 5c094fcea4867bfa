"""`python -m benchmarks.bench_leaderboard`: the full leaderboard (1,000 bootstrap rounds) from a SQLite file.

Builds SQLite files with 20 models and 10k, 100k and 1M votes (battles and votes inserted directly at schema
0002, then migration 0003 backfills vote_counts exactly as an upgrade does; each vote then gets random style sums
for both sides), and times LeaderboardService.compute end to end: the DB read and the fit separately, median of 5
runs. Target: under 1 s at 1M votes. Then the style-controlled board (`style_board`: per-vote style read from the
votes, contextual fit, sandwich intervals), median of 3 runs; target: under 1 s at 1M votes.
Saves benchmarks/results/bench_leaderboard.json; the last line printed is
`votes=1000000 models=20 rounds=1000 seconds=S db_seconds=D fit_seconds=F style_seconds=T`.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from arena.leaderboard import LeaderboardService
from arena.store.engine import make_engine
from arena.store.migrate import upgrade
from arena.store.repository import Repository

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "bench_leaderboard.json"
MODELS = [f"model-{i:02d}" for i in range(20)]
SIZES = (10_000, 100_000, 1_000_000)
ROUNDS = 1000
RUNS = 5
LANGUAGES = ["English", "French", "Chinese", "Korean"]


def build(path: Path, votes: int, seed: int = 0) -> float:
    """A database with `votes` votes between MODELS with known strengths; returns seconds spent."""
    start = time.perf_counter()
    url = f"sqlite:///{path}"
    upgrade(make_engine(url), "0002")
    rng = random.Random(seed)
    strength = {m: rng.gauss(1000, 100) for m in MODELS}
    day0 = datetime(2026, 1, 1, tzinfo=UTC)
    with sqlite3.connect(path) as conn:
        battles, rows = [], []
        for i in range(votes):
            a, b = rng.sample(MODELS, 2)
            p = 1 / (1 + 10 ** ((strength[b] - strength[a]) / 400))
            r = rng.random()
            outcome = "tie" if r < 0.08 else "both_bad" if r < 0.12 else ("a" if rng.random() < p else "b")
            when = (day0 + timedelta(minutes=i % 300_000)).isoformat()
            battle = f"{i:032x}"
            lang = LANGUAGES[i % len(LANGUAGES)]
            battles.append((battle, a, b, 1, "voted", "s", None, when, when, "anonymous", 0, lang))
            rows.append((battle, 0, outcome, 1, "s", None, when, 0, lang))
        conn.executemany(
            "INSERT INTO battles (id, model_a, model_b, anonymous, status, session_id, ip_hash, started_at, "
            "finished_at, mode, identity_leak, language) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            battles,
        )
        conn.executemany(
            "INSERT INTO votes (battle_id, turn_index, outcome, anonymous, session_id, ip_hash, created_at, "
            "identity_leak, language) VALUES (?,?,?,?,?,?,?,?,?)",
            rows,
        )
    upgrade(make_engine(url))  # 0003 backfills vote_counts from the votes; 0004 adds the style columns
    sums = ", ".join(
        f"style_{side}_{name} = {low} + abs(random()) % {spread}"
        for side in "ab"
        for name, low, spread in (("tokens", 40, 500), ("headers", 0, 4), ("lists", 0, 9), ("bold", 0, 6))
    )
    with sqlite3.connect(path) as conn:
        conn.execute(f"UPDATE votes SET {sums}")
    return time.perf_counter() - start


def measure_style(path: Path, runs: int = 3) -> dict[str, float]:
    """Median seconds of the style-controlled board (read and fit) over `runs` fresh services."""
    totals = []
    for _ in range(runs):
        service = LeaderboardService(Repository(make_engine(f"sqlite:///{path}")))
        start = time.perf_counter()
        board = service.style_board()
        totals.append(time.perf_counter() - start)
    return {"style_seconds": round(statistics.median(totals), 4), "style_votes": board.votes}


def measure(path: Path) -> dict[str, float]:
    """Median end-to-end, DB and fit seconds over RUNS fresh services (a new engine each time: no warm pool)."""
    totals, dbs, fits = [], [], []
    for _ in range(RUNS):
        service = LeaderboardService(Repository(make_engine(f"sqlite:///{path}")))
        start = time.perf_counter()
        board = service.compute(rounds=ROUNDS)
        totals.append(time.perf_counter() - start)
        dbs.append(board.db_seconds)
        fits.append(board.fit_seconds)
    return {
        "seconds": round(statistics.median(totals), 4),
        "db_seconds": round(statistics.median(dbs), 4),
        "fit_seconds": round(statistics.median(fits), 4),
        "votes_counted": board.votes,
    }


def main() -> int:
    """Build, measure, print, save; the last line is the headline."""
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-leaderboard-") as tmp:
        for size in SIZES:
            path = Path(tmp) / f"votes-{size}.db"
            built = build(path, size)
            figures = {**measure(path), **measure_style(path)}
            cells = sqlite3.connect(path).execute("SELECT COUNT(*) FROM vote_counts").fetchone()[0]
            row = {
                "votes": size,
                "models": len(MODELS),
                "rounds": ROUNDS,
                "build_seconds": round(built, 1),
                "vote_count_rows": cells,
                **figures,
            }
            results.append(row)
            print(json.dumps(row))
    summary = {
        "machine": f"{os.cpu_count()} CPU cores, no GPU",
        "target_seconds": 1.0,
        "target_style_seconds": 1.0,
        "results": results,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    last = results[-1]
    print(
        f"votes={last['votes']} models={last['models']} rounds={last['rounds']} seconds={last['seconds']} "
        f"db_seconds={last['db_seconds']} fit_seconds={last['fit_seconds']} style_seconds={last['style_seconds']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
