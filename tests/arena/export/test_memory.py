"""Exports stream: peak memory of an export process does not grow with the number of votes nor their length."""

from __future__ import annotations

from pathlib import Path

from arena.store.engine import make_engine
from arena.store.migrate import upgrade
from benchmarks.bench_export import measure
from benchmarks.synthetic_votes import fill_votes


def peak_mb(tmp_path: Path, votes: int, fmt: str, *, rounds: int = 1) -> float:
    folder = tmp_path / f"{votes}-{rounds}"
    folder.mkdir(parents=True)
    db = folder / "votes.db"
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    fill_votes(engine, votes, duplicate_every=3, rounds=rounds)
    engine.dispose()
    figures = measure(db, folder / f"out-{fmt}.jsonl", fmt)
    assert figures["votes"] == votes
    return float(figures["peak_rss_mb"])


def test_peak_memory_is_flat_from_4k_to_40k_votes(tmp_path: Path) -> None:
    for fmt in ("dpo", "lmsys"):
        small, large = peak_mb(tmp_path / fmt, 4_000, fmt), peak_mb(tmp_path / fmt, 40_000, fmt)
        # ten times the votes: an export that held its rows would need tens of MB more (40k lmsys rows ≈ 40 MB)
        assert large - small < 12, f"{fmt}: peak RSS {small:.1f} MB at 4k votes, {large:.1f} MB at 40k"


def test_long_conversations_do_not_grow_memory_with_their_length(tmp_path: Path) -> None:
    # 6,000 votes on battles of 60 rounds: every vote carries its whole history (up to 60 rounds a side, some 30 KB
    # each). Pages and write batches of 2,000 votes took 250 MB more than one-round battles; capped by size, 30 MB
    short, deep = peak_mb(tmp_path, 6_000, "lmsys"), peak_mb(tmp_path, 6_000, "lmsys", rounds=60)
    assert deep - short < 60, f"peak RSS {short:.1f} MB with one-round battles, {deep:.1f} MB with 60 rounds"
