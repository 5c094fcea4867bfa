"""The loop closed: votes → `dpo` export → examples/train_dpo.py (TRL + peft) → the adapter served by the arena."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from arena.config import LocalModel, parse_config
from arena.domain import Outcome, Reply, ReplyStatus, Side, VoteFilter, Voter
from arena.export.formats import Judges
from arena.export.run import export
from arena.store.engine import make_engine
from arena.store.repository import Repository
from arena.wiring import local_spec
from backends.base import GenerationParams
from backends.demo import DemoModels
from backends.local import LocalModelPool
from tests.support.helpers import ROOT

QUESTIONS = [
    ("Quelle est la capitale de la France ?", "Paris est la capitale.", "Je ne sais pas."),
    ("Combien font deux plus deux ?", "Deux plus deux font quatre.", "Cinq."),
    ("Traduis « bonjour » en anglais.", "« Hello ».", "Bonjour."),
    ("Un fruit rouge ?", "La fraise.", "La banane."),
]


def votes_export(db_url: str, out: Path) -> int:
    repo = Repository(make_engine(db_url))
    voter = Voter(session_id="voter-1")
    for n, (question, good, bad) in enumerate(QUESTIONS):
        battle_id = f"{n:032x}"
        repo.create_battle(battle_id=battle_id, models={Side.A: "demo-base", Side.B: "demo-lora-a"}, voter=voter)
        replies = {Side.A: Reply(good, ReplyStatus.OK), Side.B: Reply(bad, ReplyStatus.OK)}
        repo.record_battle_turn(battle_id=battle_id, turn_index=0, user_text=question, replies=replies, params={
            Side.A: {}, Side.B: {}})  # fmt: skip
        repo.record_vote(battle_id=battle_id, turn_index=0, outcome=Outcome.A, anonymous=True, voter=voter)
    summary = export(
        make_engine(db_url), "dpo", out, VoteFilter(include_self_play=True), judges=Judges(b"loop-test-key-0123456")
    )
    return summary.rows


def test_dpo_export_trains_an_adapter_that_the_arena_serves(
    sqlite_url: str, demo_models: DemoModels, tmp_path: Path
) -> None:
    data = tmp_path / "votes.jsonl"
    assert votes_export(sqlite_url, data) == len(QUESTIONS)
    adapter = tmp_path / "demo-dpo"
    done = subprocess.run(
        [sys.executable, "examples/train_dpo.py", "--data", str(data), "--base", str(demo_models.base), "--out",
         str(adapter), "--steps", "2", "--learning-rate", "0.01", "--max-length", "128", "--threads", "1", "--cpu"],
        cwd=ROOT, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"adapter: {adapter}" in done.stdout
    report = json.loads((adapter / "training.json").read_text(encoding="utf-8"))
    assert report["steps"] == 2 and report["pairs"] == len(QUESTIONS) and len(report["losses"]) == 2
    weights = load_file(adapter / "adapter_model.safetensors")
    lora_b = [w for name, w in weights.items() if "lora_B" in name]
    assert lora_b and any(bool(w.abs().sum() > 0) for w in lora_b), "training left the adapter at its zero start"

    # the config entry the script prints is valid, and the arena's local backend serves the adapter
    entry = {"name": "demo-dpo", "model": str(demo_models.base), "adapter": str(adapter)}
    config = parse_config({"models": [entry]}, source=Path("loop.yaml"))
    [model] = config.models
    assert isinstance(model, LocalModel)
    pool = LocalModelPool()
    try:
        base = LocalModel(name="demo-base", model=str(demo_models.base))
        backends = pool.load([local_spec(model), local_spec(base)])
        params = GenerationParams(max_new_tokens=12, do_sample=False)

        async def reply(name: str) -> str:
            return "".join([c.text async for c in backends[name].stream(
                [{"role": "user", "content": "Quelle est la capitale de la France ?"}], params)])  # fmt: skip

        tuned, untuned = asyncio.run(reply("demo-dpo")), asyncio.run(reply("demo-base"))
        assert tuned and tuned != untuned, "the served adapter should change the base model's greedy answer"
    finally:
        pool.close()


def test_an_empty_export_is_refused_with_a_sentence(tmp_path: Path, demo_models: DemoModels) -> None:
    empty = tmp_path / "none.jsonl"
    empty.write_text("", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "examples/train_dpo.py", "--data", str(tmp_path / "missing.jsonl"), "--base",
         str(demo_models.base), "--out", str(tmp_path / "a")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2 and "there is no export at" in done.stderr


pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
