"""`python -m benchmarks.bench_votes`: 16 concurrent writers recording battles and votes through the Repository.

Each writer thread repeats what the app does for one voted battle: `create_battle`, `record_battle_turn` (both
answers), `record_vote`; with an engine per database as the app builds it (arena.store.engine.make_engine:
SQLite in WAL mode with a busy timeout, or a PostgreSQL pool). Afterwards the votes table is checked: every
vote stored once (lost = expected - stored, duplicates = rounds with more than one vote, and vote_totals must add
up). PostgreSQL runs when `CORRAL_BENCH_POSTGRES_URL` names a server where the role may create databases, else on
a throwaway cluster started like the tests do (benchmarks/postgres.py: 127.0.0.1, fsync off), else it is skipped.
Beside the headline (whole voted battles per second) the JSON holds each call's latency, the statements,
commits and connection checkouts per voted battle (as SQLAlchemy's events see them: a PostgreSQL pool's pre-ping
is one more round trip per checkout), and a second phase on a second fresh database where the writers only vote,
on battles they stored beforehand (`votes_only_per_s`).
Targets (reported, not asserted): >= 1,000 votes/s on SQLite and >= 500 on PostgreSQL, with 0 lost.
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
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, text

from arena.domain import Outcome, Reply, ReplyStatus, Side, Voter
from arena.store.engine import make_engine
from arena.store.migrate import upgrade
from arena.store.repository import Repository
from benchmarks.harness import machine, ms, pct, save

WRITERS = 16
PARAMS = {"max_new_tokens": 256, "temperature": 0.7, "top_p": 0.95}
OUTCOMES = [Outcome.A, Outcome.B, Outcome.TIE, Outcome.BOTH_BAD]
ANSWER = "A plain answer of a few sentences, about as long as a short reply in the arena. " * 4
CALLS = ("create_battle", "record_battle_turn", "record_vote")


class Tally:
    """Statements, commits and connection checkouts on an engine, as SQLAlchemy's events report them."""

    def __init__(self, engine: Engine) -> None:
        self.counts = {"statements": 0, "commits": 0, "checkouts": 0}
        event.listen(engine, "before_cursor_execute", lambda *_: self._add("statements"))
        event.listen(engine, "commit", lambda *_: self._add("commits"))
        event.listen(engine.pool, "checkout", lambda *_: self._add("checkouts"))

    def _add(self, key: str) -> None:
        self.counts[key] += 1  # under the GIL; a lost increment would only blur a reported figure

    def snapshot(self) -> dict[str, int]:
        """The counts so far."""
        return dict(self.counts)


def writer(
    repo: Repository,
    index: int,
    votes: int,
    failures: list[str],
    latencies: dict[str, list[float]] | None = None,
) -> None:
    """Record `votes` voted battles, one after another, as one session of the app would."""
    voter = Voter(session_id=f"bench-{index}", ip_hash=f"ip-{index}")
    for i in range(votes):
        battle_id = uuid.uuid4().hex
        try:
            timed(latencies, "create_battle", partial(new_battle, repo, battle_id, voter))
            timed(latencies, "record_battle_turn", partial(new_round, repo, battle_id))
            timed(
                latencies, "record_vote", partial(vote, repo, battle_id, voter, OUTCOMES[(index + i) % len(OUTCOMES)])
            )
        except Exception as exc:  # counted as lost, and shown
            failures.append(f"{type(exc).__name__}: {exc}"[:200])


def voter_only(repo: Repository, index: int, votes: int, failures: list[str], start: threading.Barrier) -> None:
    """Store `votes` battles with one round each, wait for the other writers, then vote on all of them."""
    voter = Voter(session_id=f"bench-only-{index}", ip_hash=f"ip-{index}")
    battles = [uuid.uuid4().hex for _ in range(votes)]
    try:
        for battle_id in battles:
            new_battle(repo, battle_id, voter)
            new_round(repo, battle_id)
    except Exception as exc:  # its votes count as lost; the other writers must not wait for it forever
        failures.append(f"{type(exc).__name__}: {exc}"[:200])
        battles = []
    start.wait()
    for i, battle_id in enumerate(battles):
        try:
            vote(repo, battle_id, voter, OUTCOMES[(index + i) % len(OUTCOMES)])
        except Exception as exc:
            failures.append(f"{type(exc).__name__}: {exc}"[:200])


def timed(latencies: dict[str, list[float]] | None, call: str, run: Callable[[], None]) -> None:
    """Run one repository call, adding its duration to `latencies[call]`."""
    started = time.perf_counter()
    run()
    if latencies is not None:
        latencies[call].append(time.perf_counter() - started)


def new_battle(repo: Repository, battle_id: str, voter: Voter) -> None:
    """What the app stores when a battle starts."""
    repo.create_battle(battle_id=battle_id, models={Side.A: "m-a", Side.B: "m-b"}, voter=voter, language="en")


def new_round(repo: Repository, battle_id: str) -> None:
    """What the app stores when both answers are in."""
    replies = {
        side: Reply(text=ANSWER, status=ReplyStatus.OK, ttft_ms=200.0, total_ms=2000.0, tokens=48) for side in Side
    }
    repo.record_battle_turn(
        battle_id=battle_id,
        turn_index=0,
        user_text="Which variant answers better?",
        replies=replies,
        params={side: PARAMS for side in Side},
        language="en",
    )


def vote(repo: Repository, battle_id: str, voter: Voter, outcome: Outcome) -> None:
    """What the app stores when the voter picks."""
    repo.record_vote(battle_id=battle_id, turn_index=0, outcome=outcome, anonymous=True, voter=voter, language="en")


def run(url: str, votes_per_writer: int, writers: int = WRITERS) -> dict[str, Any]:
    """Migrate a fresh database at `url`, run the writers, check what was stored."""
    engine = make_engine(url)
    upgrade(engine)
    repo = Repository(engine)
    tally = Tally(engine)
    failures: list[str] = []
    latencies: dict[str, list[float]] = {call: [] for call in CALLS}
    threads = [
        threading.Thread(target=writer, args=(repo, i, votes_per_writer, failures, latencies), name=f"writer-{i}")
        for i in range(writers)
    ]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    counted = tally.snapshot()
    stored = count(engine, "SELECT count(*) FROM votes")
    result = {
        "writers": writers,
        "votes_expected": writers * votes_per_writer,
        "votes_stored": stored,
        "seconds": round(seconds, 3),
        "votes_per_s": round(stored / seconds, 1),
        "calls_per_s": round(len(CALLS) * stored / seconds, 1),
        "per_voted_battle": {key: round(n / max(stored, 1), 2) for key, n in counted.items()},
        "latency_ms": {call: {"p50": ms(pct(v, 50)), "p95": ms(pct(v, 95))} for call, v in latencies.items()},
        "failures": len(failures),
        "failure_samples": sorted(set(failures))[:3],
    }
    result.update(check(engine, expected=writers * votes_per_writer))
    engine.dispose()
    return result


def run_votes_only(url: str, votes_per_writer: int, writers: int = WRITERS) -> dict[str, Any]:
    """On a fresh database at `url`: `writers` threads only voting, on battles and rounds they stored beforehand."""
    engine = make_engine(url)
    upgrade(engine)
    repo = Repository(engine)
    failures: list[str] = []
    start = threading.Barrier(writers + 1)
    threads = [
        threading.Thread(target=voter_only, args=(repo, i, votes_per_writer, failures, start)) for i in range(writers)
    ]
    for t in threads:
        t.start()
    start.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    checked = check(engine, expected=writers * votes_per_writer)
    engine.dispose()
    return {
        "votes_only_per_s": round(checked["distinct"] / seconds, 1),
        "votes_only_lost": checked["lost"],
        "votes_only_duplicates": checked["duplicates"],
        "votes_only_failures": len(failures),
    }


def measure(url: str, votes_only_url: str, votes_per_writer: int) -> dict[str, Any]:
    """Whole voted battles on `url`, then votes alone on `votes_only_url` (a second fresh database)."""
    result = run(url, votes_per_writer)
    result.update(run_votes_only(votes_only_url, votes_per_writer))
    return result


def check(engine: Engine, *, expected: int) -> dict[str, Any]:
    """Every vote stored once, and vote_totals adding up to them."""
    stored = count(engine, "SELECT count(*) FROM votes")
    distinct = count(engine, "SELECT count(*) FROM (SELECT DISTINCT battle_id, turn_index FROM votes) d")
    counted = count(engine, "SELECT coalesce(sum(count), 0) FROM vote_totals")
    return {
        "lost": expected - distinct,
        "duplicates": stored - distinct,
        "vote_totals_sum": counted,
        "distinct": distinct,
    }


def count(engine: Engine, sql: str) -> int:
    """One number the database answers."""
    with engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


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
        names = [server.create_database(), server.create_database()]
    except (PostgresUnavailable, OSError, RuntimeError) as exc:
        print(f"postgres: skipped ({exc})")
        if server is not None and not given:
            server.stop()
        return None
    try:
        result = measure(server.url(names[0]), server.url(names[1]), votes_per_writer)
        result["server"] = "CORRAL_BENCH_POSTGRES_URL" if given else "throwaway cluster on 127.0.0.1 (fsync off)"
        return result
    finally:
        for name in names:
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
        sqlite = measure(f"sqlite:///{Path(tmp) / 'votes.db'}", f"sqlite:///{Path(tmp) / 'only.db'}", per_writer)
    pg = None if args.no_postgres else postgres(per_writer)
    result: dict[str, Any] = {
        "machine": machine(),
        "sqlite": sqlite,
        "postgres": pg,
        "targets": {"sqlite_votes_per_s": ">= 1000", "postgres_votes_per_s": ">= 500", "lost": 0},
    }
    path = save("bench_votes", result)
    for key, value in result.items():
        print(f"{key}: {value}")
    print(f"saved {path.relative_to(path.parents[2])}")
    lost = sum(r[key] for r in (sqlite, pg) if r for key in ("lost", "votes_only_lost"))
    duplicates = sum(r[key] for r in (sqlite, pg) if r for key in ("duplicates", "votes_only_duplicates"))
    line = f"writers={WRITERS} sqlite_votes_per_s={sqlite['votes_per_s']} lost={lost} duplicates={duplicates}"
    if pg:
        line += f" postgres_votes_per_s={pg['votes_per_s']}"
    print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
