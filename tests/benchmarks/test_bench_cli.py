"""`benchmarks.bench_cli` in miniature: every command it times runs and is reported (no timing is asserted)."""

from __future__ import annotations

from pathlib import Path

from arena.store.engine import make_engine
from arena.store.migrate import upgrade
from benchmarks.bench_cli import HELPS, headline, measure
from benchmarks.synthetic_votes import fill_votes


def test_the_benchmark_times_every_command_on_a_small_votes_file(tmp_path: Path) -> None:
    db = tmp_path / "votes.db"
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine, "0002")  # as votes_database fills its files: 0003 then counts the votes
    fill_votes(engine, 40)
    upgrade(engine)
    engine.dispose()
    figures = measure(db, runs=1)
    board = figures["leaderboard"]
    assert board["votes_counted"] > 0 and board["wall_s"] > board["compute_s"] > 0
    assert all(figures[name]["wall_s"] > 0 for name in HELPS)
    assert headline(figures).startswith(f"leaderboard_wall_s={board['wall_s']} ")
