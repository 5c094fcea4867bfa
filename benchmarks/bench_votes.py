"""`python -m benchmarks.bench_votes`: 16 concurrent writers recording battles and votes through the Repository.

Each writer thread repeats what the app does for one voted battle: `create_battle`, `record_battle_turn` (both
answers), `record_vote`; with an engine per database as the app builds it (arena.store.engine.make_engine:
SQLite in WAL mode with a busy timeout, or a PostgreSQL pool). Afterwards the votes table is checked: every
vote stored once (lost = expected - stored, duplicates = rounds with more than one vote, and vote_totals must add
up). PostgreSQL runs when `CORRAL_BENCH_POSTGRES_URL` names a server where the role may create databases, else on
a throwaway cluster started like the tests do (benchmarks/postgres.py: 127.0.0.1, fsync off), else it is skipped.
Target (reported, not asserted): >= 1,000 votes/s on SQLite with 0 lost.
Saves benchmarks/results/bench_votes.json; the last line printed is
`writers=16 sqlite_votes_per_s=S lost=L duplicates=D [postgres_votes_per_s=P]`.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import text

from arena.domain import Outcome, Reply, ReplyStatus, Side, Voter
from arena.store.engine import make_engine
from arena.store.migrate import upgrade
from arena.store.repository import Repository
from benchmarks.harness import machine, save

WRITERS = 16
PARAMS = {"max_new_tokens": 256, "temperature": 0.7, "top_p": 0.95}
OUTCOMES = [Outcome.A, Outcome.B, Outcome.TIE, Outcome.BOTH_BAD]
ANSWER = "A plain answer of a few sentences, about as long as a short reply in the arena. " * 4


def writer(repo: Repository, index: int, votes: int, failures: list[str]) -> None:
    """Record `votes` voted battles, one after another, as one session of the app would."""
    voter = Voter(session_id=f"bench-{index}", ip_hash=f"ip-{index}")
    for i in range(votes):
        battle_id = uuid.uuid4().hex
        try:
            repo.create_battle(battle_id=battle_id, models={Side.A: "m-a", Side.B: "m-b"}, voter=voter, language="en")
            replies = {
                side: Reply(text=ANSWER, status=ReplyStatus.OK, ttft_ms=200.0, total_ms=2000.0, tokens=48)
                for side in Side
            }
            repo.record_battle_turn(
                battle_id=battle_id,
                turn_index=0,
                user_text="Which variant answers better?",
                replies=replies,
                params={side: PARAMS for side in Side},
                language="en",
            )
            repo.record_vote(
                battle_id=battle_id,
                turn_index=0,
                outcome=OUTCOMES[(index + i) % len(OUTCOMES)],
                anonymous=True,
                voter=voter,
                language="en",
            )
        except Exception as exc:  # counted as lost, and shown
            failures.append(f"{type(exc).__name__}: {exc}"[:200])


def run(url: str, votes_per_writer: int, writers: int = WRITERS) -> dict[str, Any]:
    """Migrate a fresh database at `url`, run the writers, check what was stored."""
    engine = make_engine(url)
    upgrade(engine)
    repo = Repository(engine)
    failures: list[str] = []
    threads = [
        threading.Thread(target=writer, args=(repo, i, votes_per_writer, failures), name=f"writer-{i}")
        for i in range(writers)
    ]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    expected = writers * votes_per_writer
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM votes")).scalar_one()
        distinct = conn.execute(
            text("SELECT count(*) FROM (SELECT DISTINCT battle_id, turn_index FROM votes) d")
        ).scalar_one()
        counted = conn.execute(text("SELECT coalesce(sum(count), 0) FROM vote_totals")).scalar_one()
    engine.dispose()
    return {
        "writers": writers,
        "votes_expected": expected,
        "votes_stored": stored,
        "lost": expected - distinct,
        "duplicates": stored - distinct,
        "vote_totals_sum": counted,
        "seconds": round(seconds, 3),
        "votes_per_s": round(stored / seconds, 1),
        "transactions_per_s": round(3 * stored / seconds, 1),
        "failures": len(failures),
        "failure_samples": sorted(set(failures))[:3],
    }


def postgres(votes_per_writer: int) -> dict[str, Any] | None:
    """The same run on PostgreSQL, or None when no server is reachable or startable."""
    from benchmarks.postgres import PostgresServer, PostgresUnavailable, start_cluster

    given = os.environ.get("CORRAL_BENCH_POSTGRES_URL")
    server: PostgresServer | None = None
    try:
        if given:
            from sqlalchemy.engine import make_url

            server = PostgresServer(admin_url=make_url(given))
        else:
            server = start_cluster()
        name = server.create_database()
    except (PostgresUnavailable, OSError, RuntimeError) as exc:
        print(f"postgres: skipped ({exc})")
        if server is not None and not given:
            server.stop()
        return None
    try:
        result = run(server.url(name), votes_per_writer)
        result["server"] = "CORRAL_BENCH_POSTGRES_URL" if given else "throwaway cluster on 127.0.0.1 (fsync off)"
        return result
    finally:
        server.drop_database(name)
        if not given:
            server.stop()


def main(argv: list[str] | None = None) -> int:
    """Measure SQLite (and PostgreSQL when available), print, save; the last line holds the headline figures."""
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--votes-per-writer", type=int, default=250)
    p.add_argument("--quick", action="store_true", help="60 votes per writer")
    p.add_argument("--no-postgres", action="store_true")
    args = p.parse_args(argv)
    per_writer = 60 if args.quick else args.votes_per_writer
    with tempfile.TemporaryDirectory(prefix="bench-votes-") as tmp:
        sqlite = run(f"sqlite:///{Path(tmp) / 'votes.db'}", per_writer)
    pg = None if args.no_postgres else postgres(per_writer)
    result: dict[str, Any] = {
        "machine": machine(),
        "sqlite": sqlite,
        "postgres": pg,
        "targets": {"sqlite_votes_per_s": ">= 1000", "lost": 0},
    }
    path = save("bench_votes", result)
    for key, value in result.items():
        print(f"{key}: {value}")
    print(f"saved {path.relative_to(path.parents[2])}")
    lost = sqlite["lost"] + (pg["lost"] if pg else 0)
    duplicates = sqlite["duplicates"] + (pg["duplicates"] if pg else 0)
    line = f"writers={WRITERS} sqlite_votes_per_s={sqlite['votes_per_s']} lost={lost} duplicates={duplicates}"
    if pg:
        line += f" postgres_votes_per_s={pg['votes_per_s']}"
    print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
