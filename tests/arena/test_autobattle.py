"""Automatic battles end to end on the demo models: a tiny random model as the judge (its verdicts are noise;
the mechanics must be exact), the real loading code, a real database; resumable without duplicates."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from sqlalchemy import text

from arena.agreement import Paired
from arena.autobattle import PROMPTS, AutoBattles, Prompt, arena_prompts, plan, read_prompts
from arena.config import AppConfig, JudgeConfig
from arena.domain import BattleMode, Outcome, Side, VoteFilter, Voter
from arena.judges import Judge
from arena.judging import Judgement, Verdict
from arena.matchmaking import Matchmaker, Matchup
from arena.store.errors import DuplicateVote
from arena.store.repository import Repository
from backends.base import GenerationParams
from backends.demo import DemoModels
from backends.local import LocalBackend
from tests.arena.store.test_repository import ok
from tests.support.battles import store_round
from tests.support.helpers import ROOT, config_data

JUDGE = JudgeConfig(name="tiny", model="demo-base", generation=GenerationParams(max_new_tokens=6, do_sample=False))
PAIR = ("demo-lora-a", "demo-lora-b")


def _draw(config: AppConfig) -> Callable[[random.Random], Matchup]:
    matchmaker = Matchmaker(config, random.Random(0), lambda: [])

    def draw(rng: random.Random) -> Matchup:
        a, b = PAIR if rng.random() < 0.5 else PAIR[::-1]
        return Matchup({Side.A: a, Side.B: b}, BattleMode.AUTO, matchmaker.named(a, b).params)

    return draw


def test_a_run_stores_judged_battles_and_a_rerun_adds_nothing(
    repo: Repository, demo_config: AppConfig, local_backends: dict[str, LocalBackend]
) -> None:
    prompts = [Prompt("p1", "Bonjour, comment vas-tu ?", "French"), Prompt("p2", "What is rain?", None, "Water.")]
    planned = plan(prompts, 3, _draw(demo_config), judge="tiny", seed=5)
    assert [p.prompt.id for p in planned].count("p1") in (1, 2) and len({p.battle_id for p in planned}) == 3
    assert [p.battle_id for p in plan(prompts, 3, _draw(demo_config), judge="tiny", seed=5)] == [
        p.battle_id for p in planned
    ]
    judge = Judge(JUDGE, local_backends["demo-base"])
    runner = AutoBattles(repo, local_backends, judge, leak=lambda _: None, language=lambda _: "English")
    first = asyncio.run(runner.run(planned, concurrency=2))
    assert (first.planned, first.stored_before, first.judged) == (3, 0, 3)
    with repo.engine.connect() as conn:
        battles = conn.execute(text("SELECT mode, status, anonymous FROM battles")).all()
        judged = conn.execute(text("SELECT judge, verdict, first_text, second_text FROM judgements")).all()
        votes = conn.execute(text("SELECT voter FROM votes")).all()
        languages = conn.execute(text("SELECT language FROM messages WHERE role = 'user' ORDER BY id")).all()
    assert {tuple(b) for b in battles} == {("auto", "voted", True)}
    assert len(judged) == 3 and all(j.judge == "tiny" and j.second_text is not None for j in judged)
    # random bytes hold no [[A]]-style mark: stored as no verdict, with the raw text, never guessed as a vote
    assert {j.verdict for j in judged} <= {v.value for v in Verdict} and all(j.first_text for j in judged)
    assert len(votes) == sum(j.verdict in ("a", "b", "tie", "both_bad") for j in judged)
    assert {lang for (lang,) in languages} <= {"French", "English"}
    again = asyncio.run(runner.run(planned, concurrency=2))
    assert (again.stored_before, again.judged) == (3, 0)
    with repo.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM battles")).scalar() == 3
        assert conn.execute(text("SELECT count(*) FROM judgements")).scalar() == 3


def test_a_failed_contestant_is_not_stored_and_a_rerun_tries_again(
    repo: Repository, demo_config: AppConfig, local_backends: dict[str, LocalBackend]
) -> None:
    matchmaker = Matchmaker(demo_config, random.Random(0), lambda: [])

    def draw(_rng: random.Random) -> Matchup:  # "too-long" never fits its context: a real backend failure
        return Matchup(
            {Side.A: "demo-lora-a", Side.B: "too-long"},
            BattleMode.AUTO,
            matchmaker.named("demo-lora-a", "too-long").params,
        )

    planned = plan([Prompt("p1", "Hello?")], 1, draw, judge="tiny", seed=0)
    runner = AutoBattles(
        repo,
        local_backends,
        Judge(JUDGE, local_backends["demo-base"]),
        leak=lambda _: None,
        language=lambda _: "English",
    )
    steps: list[int] = []
    done = asyncio.run(runner.run(planned, concurrency=1, progress=steps.append))
    assert done.failed == {"a contestant failed to answer": 1} and done.judged == 0 and sum(steps) == 1
    assert "1 not stored (a contestant failed to answer); a rerun tries them again." in done.lines()
    assert repo.existing_battles([planned[0].battle_id]) == set()
    again = asyncio.run(runner.run(planned, concurrency=1))
    assert again.stored_before == 0 and again.failed  # tried again, not skipped


def test_a_plan_keeps_its_battles_when_questions_are_added(demo_config: AppConfig) -> None:
    prompts = [Prompt(f"q{i}", f"Question {i}?") for i in range(10)]
    before = plan(prompts, 10, _draw(demo_config), judge="tiny", seed=3)
    after = plan([*prompts, Prompt("new", "A new question?")], 11, _draw(demo_config), judge="tiny", seed=3)
    assert {p.battle_id for p in before} <= {p.battle_id for p in after}  # --from-arena grows: nothing is redone
    assert {(p.prompt.id, tuple(p.matchup.models.values())) for p in before} <= {
        (p.prompt.id, tuple(p.matchup.models.values())) for p in after
    }
    # the arena's own sampler, as the command line draws: each item's pair comes from the item's own generator
    sampler = Matchmaker(demo_config, random.Random(0), lambda: [])
    names = {m.name for m in demo_config.models}

    def sampled(rng: random.Random) -> Matchup:
        return sampler.pair(names, BattleMode.AUTO, rng)

    drawn = plan(prompts, 10, sampled, judge="tiny", seed=3)
    grown = plan([*prompts, Prompt("new", "A new question?")], 11, sampled, judge="tiny", seed=3)
    assert {(p.battle_id, tuple(p.matchup.models.values())) for p in drawn} <= {
        (p.battle_id, tuple(p.matchup.models.values())) for p in grown
    }


def test_a_judge_vote_counts_on_its_own_board_only(repo: Repository, demo_config: AppConfig) -> None:
    voter = Voter("person")
    repo.create_battle(battle_id="h" * 32, models={Side.A: "x", Side.B: "y"}, voter=voter)
    store_round(repo, "h" * 32, (ok("a"), ok("b")), text="Write a poem")
    repo.record_vote(battle_id="h" * 32, turn_index=0, outcome=Outcome.A, anonymous=True, voter=voter)
    verdict = Judgement("tiny", Verdict.B, Verdict.B, Verdict.B, "[[B]]", "[[A]]", 12.0)
    repo.record_judgement(battle_id="h" * 32, turn_index=0, judgement=verdict)  # the same round, judged: paired
    assert repo.pair_outcomes() == [("x", "y", Outcome.A, 1)]  # people's votes only, by default
    assert repo.pair_outcomes(VoteFilter(voters="judge:tiny")) == [("x", "y", Outcome.B, 1)]
    assert repo.pair_outcomes(VoteFilter(voters="judges", category="creative_writing")) == [("x", "y", Outcome.B, 1)]
    assert sorted(o for *_, o, _ in repo.pair_outcomes(VoteFilter(voters="all"))) == [Outcome.A, Outcome.B]
    assert repo.pair_outcomes(VoteFilter(voters="judge:other")) == []
    with repo.engine.connect() as conn:
        status = conn.execute(text("SELECT status FROM battles")).scalar()
    assert status == "voted"  # as its voter left it: a judge does not touch a person's battle
    with pytest.raises(DuplicateVote):
        repo.record_judgement(battle_id="h" * 32, turn_index=0, judgement=verdict)
    inconsistent = Judgement("other", Verdict.INCONSISTENT, Verdict.A, Verdict.B, "[[A]]", "[[A]]", 9.0)
    repo.record_judgement(battle_id="h" * 32, turn_index=0, judgement=inconsistent)
    assert repo.pair_outcomes(VoteFilter(voters="judge:other")) == []  # inconsistent: kept, but not a vote
    assert repo.paired_verdicts() == [Paired("tiny", "x", "y", None, Outcome.A, Outcome.B)]  # "other": no vote
    assert sorted(r.judge for r in repo.judge_readings()) == ["other", "tiny"]
    assert repo.voter_kinds() == ["human", "judge:tiny"]
    assert repo.asked_questions() == [("Write a poem", None)]
    assert [p.text for p in arena_prompts(repo.asked_questions())] == ["Write a poem"]


def test_the_shipped_prompt_set_and_prompt_files(tmp_path: Path) -> None:
    shipped = read_prompts(PROMPTS)
    assert len(shipped) >= 60 and len({p.id for p in shipped}) == len(shipped)
    assert {p.language for p in shipped} >= {"English", "French", "Chinese", "Korean", "Spanish", "German"}
    plain = tmp_path / "q.txt"
    plain.write_text("First?\n\nSecond?\n", encoding="utf-8")
    assert [(p.id, p.text) for p in read_prompts(plain)] == [("line-1", "First?"), ("line-3", "Second?")]
    bad = tmp_path / "q.jsonl"
    bad.write_text('{"question": "ok"}\n{"text": "no question key"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"q.jsonl line 2: expected an object with a non-empty \"question\""):
        read_prompts(bad)


def test_the_cli_runs_resumes_and_refuses_clearly(demo_models: DemoModels, tmp_path: Path) -> None:
    data = config_data(demo_models, max_new_tokens=6)
    data["judges"] = [{"name": "tiny", "model": "demo-base", "generation": {"max_new_tokens": 6, "do_sample": False}}]
    config = tmp_path / "arena.yaml"
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    prompts = tmp_path / "q.jsonl"
    prompts.write_text(json.dumps({"id": "q1", "question": "Hello?", "language": "English"}) + "\n", encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'auto.db'}"
    cmd = [sys.executable, "-m", "arena", "autobattle", "--config", str(config), "--db", db, "--judge", "tiny"]

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*cmd, *extra], cwd=ROOT, capture_output=True, text=True, timeout=300)

    done = run("--prompts", str(prompts), "--battles", "2", "--quiet")
    assert done.returncode == 0, done.stderr
    assert "2 battles planned; 0 already stored by an earlier run." in done.stdout and "Judged 2 in" in done.stdout
    again = run("--prompts", str(prompts), "--battles", "2", "--quiet")
    assert "2 battles planned; 2 already stored by an earlier run." in again.stdout and "Judged" not in again.stdout
    board = subprocess.run(
        [sys.executable, "-m", "arena", "judges", "--db", db, "--format", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert board.returncode == 0, board.stderr
    [report] = json.loads(board.stdout)
    assert report["judge"] == "tiny" and report["unreadable"]["n"] == 2  # its two readings; no person's vote yet
    assert report["agreement"] is None and "no agreement can be measured" in report["sentences"][0]
    missing = run("--prompts", str(prompts), "--battles", "1", "--judge", "nobody")
    assert missing.returncode == 2 and "there is no judge 'nobody' in the config (judges: tiny)" in missing.stderr
    own = run("--prompts", str(prompts), "--battles", "1", "--pairs", "demo-base:demo-lora-a")
    assert own.returncode == 2 and "the judge's own model cannot fight in its battles" in own.stderr
    assert "Traceback" not in missing.stderr + own.stderr
