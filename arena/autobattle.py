"""Automatic battles: questions from a prompt set or from the arena, pairs by the arena's own sampler, answers
through the normal backends, a judge's verdict, all stored like a person's battle but marked `auto` and voted by
"judge:NAME". Deterministic plans (a battle id per planned item) make a rerun skip what is already stored."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from arena.domain import Reply, ReplyStatus, Side, Voter
from arena.judges import Judge
from arena.judging import Judgement
from arena.matchmaking import Matchup
from arena.replies import stream_reply
from arena.store.repository import Repository
from backends.base import Backend, Message

log = logging.getLogger(__name__)
_RUN_NAMESPACE = uuid.UUID("2b1c7f0e-8a47-4d59-9f0e-3c6d2a9b7e51")  # fixed: a rerun plans the same battle ids
PROMPTS = Path(__file__).parents[1] / "prompts" / "autobattle" / "questions.jsonl"
"""The prompt set that ships with Corral (several languages, written for it)."""


class PromptFileError(ValueError):
    """A prompt file that cannot be read; the message is a sentence naming the file and line."""


@dataclass(frozen=True)
class Prompt:
    """A question to battle on, with its language and an optional reference answer for the judge."""

    id: str
    text: str
    language: str | None = None
    reference: str | None = None


def read_prompts(path: Path) -> list[Prompt]:
    """Questions from a JSON Lines file ({"id", "question", "language"?, "reference"?} per line) or, for any other
    suffix, a text file with one question per line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise PromptFileError(f"cannot read the prompt file {path}: {exc.__class__.__name__}") from None
    prompts: list[Prompt] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if path.suffix != ".jsonl":
            prompts.append(Prompt(f"line-{number}", line.strip()))
            continue
        try:
            row = json.loads(line)
            text = row["question"]
            if not isinstance(text, str) or not text.strip():
                raise ValueError
        except (ValueError, KeyError, TypeError):
            raise PromptFileError(f'{path} line {number}: expected an object with a non-empty "question"') from None
        prompts.append(Prompt(str(row.get("id") or f"line-{number}"), text, row.get("language"), row.get("reference")))
    if not prompts:
        raise PromptFileError(f"the prompt file {path} has no questions")
    return prompts


def arena_prompts(asked: Sequence[tuple[str, str | None]]) -> list[Prompt]:
    """The questions people asked, as prompts named by a hash of their text (never their answers)."""
    return [
        Prompt("arena-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:12], text, language)
        for text, language in asked
        if text.strip()
    ]


@dataclass(frozen=True)
class Planned:
    """One automatic battle to run: its id, question, models and their sampling parameters."""

    battle_id: str
    prompt: Prompt
    matchup: Matchup


def plan(
    prompts: Sequence[Prompt], battles: int, draw: Callable[[random.Random], Matchup], *, judge: str, seed: int
) -> list[Planned]:
    """`battles` items: the questions in an order fixed by the seed and each question's id (each once before any
    repeats), and for each a pair drawn from a generator seeded by the item itself. An item does not depend on
    the other questions, so a rerun, even after new questions joined the list (`--from-arena`), finds the
    battles it already stored by their ids."""
    order = sorted(prompts, key=lambda p: hashlib.sha256(f"{seed}/{p.id}".encode()).digest())
    items = []
    for index in range(battles):
        prompt = order[index % len(order)]
        key = f"{judge}/{seed}/{index // len(order)}/{prompt.id}"
        matchup = draw(random.Random(key))
        items.append(Planned(uuid.uuid5(_RUN_NAMESPACE, key).hex, prompt, matchup))
    return items


@dataclass
class Summary:
    """What a run did."""

    planned: int = 0
    stored_before: int = 0  # skipped: an earlier run stored them
    judged: int = 0  # judged and stored (votes, or inconsistent / no-verdict judgements)
    verdicts: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)  # why a battle was not stored (a rerun tries it again)
    seconds: float = 0.0

    @property
    def judged_per_minute(self) -> float:
        """Battles judged per minute of the run."""
        return 60.0 * self.judged / self.seconds if self.seconds else 0.0

    def lines(self) -> list[str]:
        """The summary as sentences."""
        said = [f"{self.planned:,} battles planned; {self.stored_before:,} already stored by an earlier run."]
        if self.judged:
            counts = ", ".join(f"{verdict}: {n:,}" for verdict, n in sorted(self.verdicts.items()))
            said.append(
                f"Judged {self.judged:,} in {self.seconds:.0f} s ({self.judged_per_minute:.1f} a minute): {counts}."
            )
        for reason, n in sorted(self.failed.items()):
            said.append(f"{n:,} not stored ({reason}); a rerun tries them again.")
        return said


class AutoBattles:
    """Runs planned automatic battles: both answers at once, the judge, then the battle, round and judgement
    stored together at the end (so an interrupted battle leaves nothing half-written to a rerun)."""

    def __init__(
        self,
        repo: Repository,
        backends: Mapping[str, Backend],
        judge: Judge,
        *,
        leak: Callable[[str], str | None],
        language: Callable[[str], str],
    ) -> None:
        self._repo = repo
        self._backends = backends
        self._judge = judge
        self._leak = leak
        self._language = language

    async def run(
        self, planned: Sequence[Planned], *, concurrency: int, progress: Callable[[int], object] = lambda _: None
    ) -> Summary:
        """Run every item not stored yet, `concurrency` at a time; `progress(n)` as n more are settled."""
        start = time.perf_counter()
        summary = Summary(planned=len(planned))
        done = await asyncio.to_thread(self._repo.existing_battles, [p.battle_id for p in planned])
        summary.stored_before = len(done)
        progress(len(done))
        slots = asyncio.Semaphore(concurrency)

        async def one(item: Planned) -> None:
            async with slots:
                try:
                    await self._one(item, summary)
                except Exception as exc:  # one battle's failure must not end the run
                    log.exception("automatic battle %s failed", item.battle_id)
                    summary.failed[f"an unexpected {type(exc).__name__}"] += 1
            progress(1)

        await asyncio.gather(*(one(p) for p in planned if p.battle_id not in done))
        summary.seconds = time.perf_counter() - start
        return summary

    async def _one(self, item: Planned, summary: Summary) -> None:
        question = item.prompt.text
        replies = {side: Reply() for side in Side}
        changed = asyncio.Event()
        messages: list[Message] = [{"role": "user", "content": question}]
        await asyncio.gather(
            *(
                stream_reply(
                    self._backends[item.matchup.models[side]],
                    messages,
                    item.matchup.params[side],
                    replies[side],
                    changed,
                )
                for side in Side
            )
        )
        if any(r.status is ReplyStatus.ERROR for r in replies.values()):
            summary.failed["a contestant failed to answer"] += 1
            return
        if next((n for r in replies.values() if (n := self._leak(r.text))), None) is not None:
            summary.failed["an answer named a model, which the judge must not read"] += 1
            return
        judgement = await self._judge.judge(question, replies[Side.A].text, replies[Side.B].text, item.prompt.reference)
        if judgement.error is not None:
            summary.failed[f"the judge could not read it: {judgement.error}"] += 1
            return
        language = item.prompt.language or await asyncio.to_thread(self._language, question)
        await asyncio.to_thread(self._store, item, replies, language, judgement)
        summary.judged += 1
        summary.verdicts[judgement.verdict.value] += 1

    def _store(self, item: Planned, replies: Mapping[Side, Reply], language: str | None, judgement: Judgement) -> None:
        self._repo.record_auto_battle(
            battle_id=item.battle_id,
            models=item.matchup.models,
            voter=Voter(session_id=f"autobattle:{self._judge.name}"),
            user_text=item.prompt.text,
            replies=replies,
            params={side: item.matchup.params[side].model_dump(mode="json") for side in Side},
            language=language,
            judgement=judgement,
        )
