"""`make loop` in miniature: the same code path end to end on the tiny demo models (they print random text).

Mechanics only (votes stored through the app, a non-empty export, an adapter trained, served and voted on, the
headline line); no win rate is asserted. Plus the voter and the statistics, which are pure functions.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from arena.domain import Side
from arena.store.engine import make_engine
from arena.store.repository import Repository
from backends.demo import DemoModels
from benchmarks.bench_loop import (
    BASE,
    TUNED,
    VotedRound,
    answer_stats,
    prefer_shorter,
    schedule,
    split_prompts,
    wilson,
    win_rate,
)
from tests.support.helpers import ROOT
from tests.support.store_reads import reads

HEADLINE = re.compile(r"votes=(\d+) steps=(\d+) win_rate=([\d.]+) lower=([\d.]+) upper=([\d.]+) minutes=([\d.]+)")


def test_the_loop_on_the_demo_models(demo_models: DemoModels, tmp_path: Path) -> None:
    work, results = tmp_path / "loop", tmp_path / "bench_loop.json"
    cmd = [sys.executable, "-m", "benchmarks.bench_loop", "--model", str(demo_models.base), "--work", str(work)]
    cmd += ["--battles", "6", "--eval-battles", "4", "--steps", "2", "--batch-size", "2", "--learning-rate", "0.01"]
    cmd += ["--max-new-tokens", "16", "--concurrency", "3", "--dtype", "float32", "--tie-margin", "0"]
    done = subprocess.run([*cmd, "--results", str(results)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]

    last = done.stdout.strip().splitlines()[-1]
    headline = HEADLINE.fullmatch(last)
    assert headline, last
    result = json.loads(results.read_text(encoding="utf-8"))
    failed = result["round1"]["errors"] + result["round2"]["errors"]
    assert not failed, failed
    assert "[loop] round 1: 6/6 battles" in done.stdout and "[loop] round 2: 4/4 battles" in done.stdout
    assert int(headline[1]) == result["votes"] == 6 and int(headline[2]) == result["steps"] == 2
    assert 0 <= float(headline[4]) <= float(headline[3]) <= float(headline[5]) <= 1

    # every vote went through the app into its database: base against itself, then the new variant against it
    repo = Repository(make_engine(f"sqlite:///{work / 'corral.db'}"))
    pairs = [sorted(battle.models.values()) for v in reads(repo).votes() if (battle := reads(repo).battle(v.battle_id))]
    assert pairs.count([BASE, BASE]) == 6 and pairs.count([BASE, TUNED]) == 4
    tuned = [b for v in reads(repo).votes() if (b := reads(repo).battle(v.battle_id)) and TUNED in b.models.values()]
    answers = [b.conversations[s][-1] for b in tuned for s in Side if b.models[s] == TUNED]
    assert [(a.role, a.status) for a in answers] == [("assistant", "ok")] * 4  # the adapter was loaded and answered

    export = work / "votes-dpo.jsonl"
    rows = [json.loads(line) for line in export.read_text(encoding="utf-8").splitlines()]
    assert rows and len(rows) == result["pairs_exported"] == result["training"]["pairs"]
    assert (work / "adapters" / TUNED / "adapter_model.safetensors").is_file()
    assert result["tuned_vs_base"]["wins"] + result["tuned_vs_base"]["losses"] + result["tuned_vs_base"]["ties"] == 4


def test_the_voter_prefers_the_shorter_answer() -> None:
    assert prefer_shorter("short", "a much longer answer", 0.05) == "a"
    assert prefer_shorter("a much longer answer", "short", 0.05) == "b"
    assert prefer_shorter("x" * 100, "y" * 104, 0.05) == "tie"  # within 5% of the longer one
    assert prefer_shorter("x" * 100, "y" * 106, 0.05) == "a"
    assert prefer_shorter("  same  ", "same", 0.0) == "tie"  # surrounding blanks do not count


def test_win_rate_counts_ties_as_half_from_either_side() -> None:
    rows = [
        (TUNED, BASE, "a", 5),
        (BASE, TUNED, "a", 2),
        (BASE, TUNED, "b", 3),
        (TUNED, BASE, "tie", 2),
        (BASE, BASE, "a", 50),  # round-1 votes are not part of it
    ]
    record = win_rate(rows, TUNED, BASE)
    assert (record.wins, record.losses, record.ties) == (8, 2, 2)
    assert record.rate == pytest.approx(9 / 12)
    lower, upper = record.interval()
    assert lower < record.rate < upper


def test_answer_stats_per_model_over_one_pairing() -> None:
    rounds = [
        VotedRound((TUNED, BASE), "a", ((20, 90), (64, 300))),
        VotedRound((BASE, TUNED), "b", ((64, 280), (64, 310))),
        VotedRound((BASE, BASE), "tie", ((1, 1), (1, 1))),  # another pairing: left out
    ]
    stats = answer_stats(rounds, (TUNED, BASE), limit=64)
    assert stats[TUNED] == {"answers": 2, "mean_tokens": 42.0, "mean_chars": 200.0, "ended_share": 0.5}
    assert stats[BASE] == {"answers": 2, "mean_tokens": 64.0, "mean_chars": 290.0, "ended_share": 0.0}


def test_wilson_interval() -> None:
    lower, upper = wilson(65, 100)
    assert lower == pytest.approx(0.5521, abs=1e-3) and upper == pytest.approx(0.7363, abs=1e-3)
    assert wilson(0, 0) == (0.0, 1.0)
    assert wilson(10, 10)[1] == 1.0


def test_prompts_split_and_schedule() -> None:
    questions = [f"q{i}" for i in range(10)]
    train, held = split_prompts(questions, 0.3, random.Random(1))
    assert len(held) == 3 and sorted(train + held) == sorted(questions)
    battles = schedule(held, 7, (TUNED, BASE), random.Random(2))
    assert len(battles) == 7 and {b.question for b in battles} == set(held)
    assert all({b.model_a, b.model_b} == {TUNED, BASE} for b in battles)
    assert {b.model_a for b in battles} == {TUNED, BASE}  # sides are drawn, not fixed
