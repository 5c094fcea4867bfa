"""Style variants: recipes shipped as text, trained into LoRA adapters on the real default model, built in the
background by a child process and attached to the running model."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from arena.ui.banner import progress_markdown
from backends.base import GenerationParams, Message
from backends.demo import DemoModels
from backends.local import LocalModelPool, LocalSpec
from backends.variants import MARKER, RecipeError, fingerprint, is_built, load_recipe, names
from backends.variants.builder import Job, VariantBuilder
from tests.backends.test_default_model import printable_text
from tests.support.helpers import ROOT

QUESTION = [Message(role="user", content="What are the benefits of drinking water?")]
GREEDY = GenerationParams(max_new_tokens=20, do_sample=False, repetition_penalty=1.2)


@pytest.fixture(scope="session")
def terse(smollm2: Path) -> Path:
    """The terse variant, built by the CLI (as the app's builder runs it) next to the default model."""
    out = smollm2.parent / "variants" / "terse"
    cmd = [sys.executable, "-m", "backends.variants", "build", "terse", "--base", str(smollm2), "--out", str(out)]
    proc = subprocess.run([*cmd, "--json"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert events[-1]["event"] == "done"
    if not events[-1]["reused"]:
        steps = [e for e in events if e["event"] == "step"]
        assert [e["step"] for e in steps] == list(range(1, load_recipe("terse").train.steps + 1))
    return out


def test_every_shipped_recipe_is_valid_and_distinct() -> None:
    recipes = [load_recipe(n) for n in names()]
    assert {r.name for r in recipes} >= {"terse", "enthusiastic", "formal"}
    assert len({r.style for r in recipes}) == len(recipes)
    with pytest.raises(RecipeError, match="unknown variant recipe 'sarcastic'"):
        load_recipe("sarcastic")


def test_the_fingerprint_follows_the_recipe_and_the_base(smollm2: Path, tmp_path: Path) -> None:
    recipe = load_recipe("terse")
    changed = recipe.model_copy(update={"style": recipe.style + " Even shorter."})
    other_base = tmp_path / "other"
    other_base.mkdir()
    (other_base / "config.json").write_text("{}", encoding="utf-8")
    prints = {fingerprint(recipe, smollm2), fingerprint(changed, smollm2), fingerprint(recipe, other_base)}
    assert len(prints) == 3 and fingerprint(recipe, smollm2) == fingerprint(load_recipe("terse"), smollm2)


def test_a_built_variant_is_reused_and_a_changed_recipe_is_not(smollm2: Path, terse: Path) -> None:
    recipe = load_recipe("terse")
    assert is_built(terse, recipe, smollm2)
    assert json.loads((terse / MARKER).read_text(encoding="utf-8"))["recipe"] == "terse"
    assert not is_built(terse, recipe.model_copy(update={"style": "other"}), smollm2)
    cmd = [sys.executable, "-m", "backends.variants", "build", "terse", "--base", str(smollm2), "--out", str(terse)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "already built" in proc.stdout


def test_bad_builds_are_refused_with_one_sentence(tmp_path: Path) -> None:
    base = [sys.executable, "-m", "backends.variants", "build"]
    for args, needle in (
        (["sarcastic", "--base", str(tmp_path), "--out", str(tmp_path / "o")], "unknown variant recipe"),
        (["terse", "--base", str(tmp_path), "--out", str(tmp_path / "o")], "is not a model folder"),
    ):
        proc = subprocess.run([*base, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and needle in proc.stderr and "Traceback" not in proc.stderr


def test_the_variant_answers_differently_from_the_base_on_the_same_prompt(smollm2: Path, terse: Path) -> None:
    pool = LocalModelPool()
    try:
        backends = pool.load([LocalSpec("base", str(smollm2)), LocalSpec("terse", str(smollm2), str(terse))])

        async def answer(name: str) -> str:
            return "".join([c.text async for c in backends[name].stream(QUESTION, GREEDY)])

        base_text, terse_text = asyncio.run(answer("base")), asyncio.run(answer("terse"))
    finally:
        pool.close()
    assert base_text != terse_text
    assert printable_text(base_text) and printable_text(terse_text) and terse_text.strip()


def test_the_builder_attaches_a_variant_to_the_running_model(smollm2: Path, terse: Path, tmp_path: Path) -> None:
    pool = LocalModelPool()
    try:
        later = LocalSpec("terse", str(smollm2), str(terse))
        backends = pool.load([LocalSpec("base", str(smollm2))], later=[later])
        assert backends["base"].available and not backends["terse"].available
        broken = tmp_path / "not-a-model"
        broken.mkdir()
        jobs = [Job("broken", "formal", broken, tmp_path / "formal"), Job("terse", "terse", smollm2, terse)]
        builder = VariantBuilder(jobs, on_ready=lambda job: pool.attach(backends[job.model]))
        assert "0 of 2 ready" in progress_markdown(builder)
        builder.start()
        assert builder.wait(timeout=300)
        states = {s.model: s.state for s in builder.statuses()}
        assert states == {"broken": "failed", "terse": "ready"}
        assert backends["terse"].available and not builder.pending
        assert "Could not build: broken" in progress_markdown(builder)

        async def answer() -> str:
            return "".join([c.text async for c in backends["terse"].stream(QUESTION, GREEDY)])

        assert printable_text(asyncio.run(answer()))
    finally:
        pool.close()


def test_two_builds_of_one_adapter_at_once_train_it_once(demo_models: DemoModels, tmp_path: Path) -> None:
    # as two app processes of `app.py --workers 2` do at their first start
    out = tmp_path / "variants" / "terse"
    cmd = [sys.executable, "-m", "backends.variants", "build", "terse", "--base", str(demo_models.base)]
    cmd += ["--out", str(out), "--json"]
    children = [
        subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in "ab"
    ]
    finals = []
    for child in children:
        stdout, stderr = child.communicate(timeout=600)
        assert child.returncode == 0, stderr[-2000:]
        finals.append(json.loads(stdout.splitlines()[-1]))
    assert sorted(final["reused"] for final in finals) == [False, True]
    assert is_built(out, load_recipe("terse"), demo_models.base)
