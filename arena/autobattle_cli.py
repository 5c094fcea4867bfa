"""`python -m arena autobattle`: automatic battles judged by a configured AI judge (the composition for it)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from arena.settings import ROOT, Settings

if TYPE_CHECKING:
    from arena.autobattle import Prompt
    from arena.config import AppConfig
    from arena.matchmaking import Matchup

HELP = "battles between the configured models on a prompt set, judged by an AI judge (resumable)"
DEFAULT_CONFIG = ROOT / "configs" / "default.yaml"
DEFAULT_MODEL_FOLDER = "smollm2-135m-instruct"  # what configs/default.yaml names under the models folder


def add_autobattle_arguments(p: argparse.ArgumentParser, settings: Settings) -> None:
    """Give the autobattle sub-command its arguments."""
    source = p.add_mutually_exclusive_group()
    source.add_argument(
        "--prompts", type=Path, help="questions: JSON Lines (question, id, language, reference) or text"
    )
    source.add_argument("--from-arena", action="store_true", help="the first questions people asked (never answers)")
    p.add_argument("--judge", required=True, help="a judge named in the config's `judges:`")
    p.add_argument("--battles", type=int, required=True, help="how many battles to plan (a rerun skips stored ones)")
    p.add_argument("--pairs", nargs="+", metavar="A:B", help="only these pairs (else the arena's sampler draws)")
    p.add_argument("--concurrency", type=int, default=8, help="battles at once (the judge keeps its own limits)")
    p.add_argument("--seed", type=int, default=0, help="the plan's seed: the same seed plans the same battles")
    p.add_argument("--config", type=Path, help="the arena's YAML config (default: the default arena's)")
    p.add_argument("--db", default=settings.db_url, help="SQLAlchemy URL")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=lambda args: run(args, settings))


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Plan, run and summarise; a sentence and exit code 2 for what cannot be used."""
    from arena.autobattle import PROMPTS, PromptFileError, read_prompts
    from arena.config import ConfigError
    from backends.default_model import DefaultModelError
    from backends.local import ModelLoadError

    if args.battles < 1 or args.concurrency < 1:
        return _refuse("--battles and --concurrency must be at least 1")
    try:
        config = _load(args.config, settings)
        judge_config = config.judge(args.judge)
        prompts = None if args.from_arena else read_prompts(args.prompts or PROMPTS)
        pairs = _pairs(args.pairs, {m.name for m in config.models})
    except (ConfigError, DefaultModelError, PromptFileError, ValueError) as exc:
        return _refuse(str(exc))
    allowed = {m.name for m in config.models} - (set() if judge_config.may_judge_contestants else {judge_config.model})
    if pairs is not None and (bad := [p for p in pairs if not set(p) <= allowed]):
        return _refuse(f"the judge's own model cannot fight in its battles: {bad[0][0]}:{bad[0][1]}")
    if len(allowed) < 2:
        return _refuse("an automatic battle needs two models other than the judge's own")
    logging.basicConfig(level=logging.WARNING)
    try:
        return asyncio.run(_run(args, settings, config, prompts, pairs, allowed))
    except (ConfigError, ModelLoadError) as exc:
        return _refuse(str(exc))


async def _run(
    args: argparse.Namespace,
    settings: Settings,
    config: AppConfig,
    prompts: list[Prompt] | None,
    pairs: list[tuple[str, str]] | None,
    allowed: set[str],
) -> int:
    from tqdm import tqdm  # type: ignore[import-untyped]

    from arena.autobattle import AutoBattles, arena_prompts, plan
    from arena.domain import BattleMode
    from arena.judges import Judge
    from arena.language import LanguageDetector
    from arena.leaks import DEFAULT_IDENTITY_WORDS, LeakDetector
    from arena.matchmaking import Matchmaker
    from arena.store.engine import make_engine
    from arena.store.migrate import upgrade
    from arena.store.repository import Repository
    from arena.wiring import build_backends

    repo = Repository(make_engine(args.db))
    upgrade(repo.engine)
    if prompts is None:
        prompts = arena_prompts(repo.asked_questions())
        if not prompts:
            return _refuse("nobody has asked a question in this arena yet: use --prompts")
    judge_config = config.judge(args.judge)

    def draw(rng: random.Random) -> Matchup:
        if pairs is not None:
            a, b = rng.choice(pairs)
            a, b = (a, b) if rng.random() < 0.5 else (b, a)
            return replace(matchmaker.named(a, b), mode=BattleMode.AUTO)
        return matchmaker.pair(allowed, BattleMode.AUTO, rng)  # the item's own generator: its pair is its own

    # no vote statistics: the plan depends on the seed alone
    matchmaker = Matchmaker(config, random.Random(args.seed), lambda: [])
    planned = plan(prompts, args.battles, draw, judge=args.judge, seed=args.seed)
    if any(m.backend == "local" for m in config.models):
        import torch

        torch.set_num_threads(1)  # faster for small models on a small machine, as the app does
    wired = build_backends(config, settings.env)
    wired.monitor.check_now()
    if wired.variants is not None and wired.variants.pending:
        print("arena: building the config's style variants first (once; later runs reuse them)", file=sys.stderr)
        wired.variants.start()
        wired.variants.wait()
    missing = sorted({m for p in planned for m in p.matchup.models.values()} - set(wired.backends))
    if missing or judge_config.model not in wired.backends:
        wired.close()
        return _refuse(f"these models could not be loaded: {', '.join(missing or [judge_config.model])}")
    try:
        judge = Judge(judge_config, wired.backends[judge_config.model])
        words = config.arena.identity_words if config.arena.identity_words is not None else DEFAULT_IDENTITY_WORDS
        leaks = LeakDetector([n for m in config.models for n in (m.name, *m.aliases)], words)
        runner = AutoBattles(
            repo, wired.backends, judge, leak=leaks.find, language=LanguageDetector(config.arena.languages).detect
        )
        with tqdm(total=len(planned), disable=args.quiet, file=sys.stderr, unit="battle") as bar:
            summary = await runner.run(planned, concurrency=args.concurrency, progress=bar.update)
    finally:
        for remote in wired.remote:
            await remote.aclose()
        wired.close()
    for line in summary.lines():
        print(line)
    return 0


def _load(path: Path | None, settings: Settings) -> AppConfig:
    """The config as the app reads it (${data_dir} and ${models_dir} expanded); the default arena's model is
    converted first when it is the one asked for."""
    from arena.config import load_config

    if path is None:
        from backends.default_model import ensure_default_model

        ensure_default_model(settings.resolved_models_dir / DEFAULT_MODEL_FOLDER)
    variables = {"data_dir": str(settings.resolved_data_dir), "models_dir": str(settings.resolved_models_dir)}
    return load_config(path or DEFAULT_CONFIG, variables=variables)


def _pairs(given: list[str] | None, models: set[str]) -> list[tuple[str, str]] | None:
    """`A:B` arguments as pairs of configured models (a ValueError in a sentence otherwise)."""
    if not given:
        return None
    pairs = []
    for text in given:
        a, sep, b = text.partition(":")
        if not sep or a not in models or b not in models or a == b:
            raise ValueError(f"--pairs takes A:B with two different configured models, not '{text}'")
        pairs.append((a, b))
    return pairs


def _refuse(sentence: str) -> int:
    print(f"arena: {sentence}", file=sys.stderr)
    return 2
