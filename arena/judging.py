"""What an AI judge is asked and how its answer is read: the pairwise prompt, the verdict, the swap. Pure.

A judge reads a question and two answers, never the models' names, and ends with a verdict in double brackets,
as MT-Bench's pairwise judges do: [[A]], [[B]], [[C]] for a tie, [[D]] when both answers are bad. Text with no
verdict, or with two different ones, is "no verdict", never a guess. With `swap`, the judge reads the answers in
both orders; the round gets a verdict only when the two readings agree once the sides are swapped back, and is
"inconsistent" otherwise (not a tie: a judge that flips with the order has said nothing about the answers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from arena.domain import Outcome

if TYPE_CHECKING:  # the store reads verdicts from here: Jinja is imported only when a prompt is rendered
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from prompts import Message

JUDGE_TEMPLATES = Path(__file__).parents[1] / "prompts" / "judges"
DEFAULT_TEMPLATE = "pairwise"


class Verdict(StrEnum):
    """A judge's reading of one round (stored as the value)."""

    A = "a"
    B = "b"
    TIE = "tie"
    BOTH_BAD = "both_bad"
    INCONSISTENT = "inconsistent"  # the two orders disagreed
    NONE = "none"  # no readable verdict


_MARK = re.compile(r"\[\[\s*([ABCD])\s*\]\]")
_MARKS = {"A": Verdict.A, "B": Verdict.B, "C": Verdict.TIE, "D": Verdict.BOTH_BAD}
_SWAPPED = {Verdict.A: Verdict.B, Verdict.B: Verdict.A}
OUTCOMES: dict[Verdict, Outcome] = {
    Verdict.A: Outcome.A,
    Verdict.B: Outcome.B,
    Verdict.TIE: Outcome.TIE,
    Verdict.BOTH_BAD: Outcome.BOTH_BAD,
}
"""The vote a decisive or level verdict counts as; INCONSISTENT and NONE are not votes."""


def parse_verdict(text: str) -> Verdict:
    """The verdict in a judge's answer: its one bracketed mark (repeated or not), else NONE."""
    found = {_MARKS[m] for m in _MARK.findall(text)}
    return found.pop() if len(found) == 1 else Verdict.NONE


def swapped_back(verdict: Verdict) -> Verdict:
    """A verdict given with the answers shown in swapped order, read for the original order."""
    return _SWAPPED.get(verdict, verdict)


def combine(first: Verdict, second: Verdict | None) -> Verdict:
    """The round's verdict from the first reading and, with swap, the second (already `swapped_back`)."""
    if second is None or first is Verdict.NONE:
        return first
    if second is Verdict.NONE:
        return Verdict.NONE
    return first if first == second else Verdict.INCONSISTENT


@dataclass(frozen=True)
class Judgement:
    """A judge's reading of one round: the verdict, and what it said in each order (with swap)."""

    judge: str
    verdict: Verdict
    first: Verdict
    second: Verdict | None  # the swapped reading, read back in the original order; None without swap
    first_text: str
    second_text: str | None
    ms: float
    error: str | None = None  # why a reading has no text (the judge's backend failed or timed out)


@dataclass(frozen=True)
class JudgeTemplate:
    """A pairwise judging prompt: Jinja sources for the system and the user message."""

    name: str
    system: str
    user: str

    def messages(self, question: str, answer_a: str, answer_b: str, reference: str | None = None) -> list[Message]:
        """The judge's conversation for one round: only the question, the two answers and the reference."""
        env = _environment()
        values = {"question": question, "answer_a": answer_a, "answer_b": answer_b, "reference": reference}
        return [
            {"role": "system", "content": env.from_string(self.system).render(values).strip()},
            {"role": "user", "content": env.from_string(self.user).render(values).strip()},
        ]


@lru_cache(maxsize=1)
def _environment() -> ImmutableSandboxedEnvironment:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    return ImmutableSandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=True)


def load_template(name_or_path: str) -> JudgeTemplate:
    """A judging template: a name under prompts/judges/ (NAME.system.jinja and NAME.user.jinja) or a path to
    such a pair's stem; a clear ValueError when it is not there."""
    given = Path(name_or_path)
    stem = given if given.parent != Path() or given.is_absolute() else JUDGE_TEMPLATES / name_or_path
    system, user = stem.with_name(stem.name + ".system.jinja"), stem.with_name(stem.name + ".user.jinja")
    if not system.is_file() or not user.is_file():
        raise ValueError(f"judge template '{name_or_path}' needs {system} and {user}")
    return JudgeTemplate(stem.name, system.read_text(encoding="utf-8"), user.read_text(encoding="utf-8"))
