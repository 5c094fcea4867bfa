"""What an answer's style is made of, for style-controlled ratings: its length and its markdown.

Chatbot Arena controls its leaderboard for four things voters are known to favour: answer length in tokens and
the counts of markdown headers, list items and bold spans, counted outside fenced code blocks. The counts are
taken when an answer is stored; a battle's features are the normalised differences of its two answers
(`style_differences`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy only where differences are taken: the store imports this module on every write path
    import numpy as np
    from numpy.typing import NDArray

STYLE_FEATURES: tuple[str, ...] = ("length", "headers", "lists", "bold")
"""The features, in the order of every array here."""

_FENCE = re.compile(r"[ \t]{0,3}(`{3,}|~{3,})")
_RULE = re.compile(r"[ \t]{0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*")  # a thematic break (---, * * *), not a list item
_HEADER = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+\S", re.MULTILINE)
_LIST_ITEM = re.compile(r"^[ \t]*(?:[-*+]|\d{1,9}[.)])[ \t]+\S", re.MULTILINE)
_BOLD = re.compile(r"\*\*(?=\S)[^*\n]+?\*\*|__(?=\S)[^_\n]+?__")
_WORDISH = re.compile(r"\w+|[^\w\s]", re.UNICODE)


@dataclass(frozen=True)
class StyleVotes:
    """Votes with both sides' style, as columns: one entry per vote (side A as shown), counts (votes, features)."""

    model_a: list[str]
    model_b: list[str]
    outcome: list[str]
    counts_a: NDArray[np.float64]
    counts_b: NDArray[np.float64]

    def __len__(self) -> int:
        """The number of votes."""
        return len(self.outcome)


@dataclass(frozen=True)
class StyleCounts:
    """One answer's length in tokens and its markdown headers, list items and bold spans."""

    tokens: int
    headers: int
    lists: int
    bold: int

    def as_tuple(self) -> tuple[int, int, int, int]:
        """The counts in `STYLE_FEATURES` order."""
        return (self.tokens, self.headers, self.lists, self.bold)


def estimate_tokens(text: str) -> int:
    """A tokenizer-free token count for answers whose backend gave none: words and punctuation marks, and one per
    character of scripts written without spaces (close to what subword tokenizers give for these)."""
    count = 0
    for piece in _WORDISH.findall(text):
        count += len(piece) if not piece.isascii() and _unspaced(piece) else 1
    return count


def _unspaced(piece: str) -> bool:
    return any("\u3040" <= c <= "\u30ff" or "\u3400" <= c <= "\u9fff" or "\uf900" <= c <= "\ufaff" for c in piece)


def outside_code(text: str) -> str:
    """The text without fenced code blocks, in one pass over its lines (a fence closes on a line of the same
    character at least as long; an unclosed one runs to the end, as in CommonMark), and without thematic breaks."""
    kept: list[str] = []
    fence = ""
    for line in text.split("\n"):
        opened = _FENCE.match(line)
        if fence:
            if (
                opened
                and opened.group(1)[0] == fence[0]
                and len(opened.group(1)) >= len(fence)
                and not line[opened.end() :].strip()
            ):
                fence = ""
        elif opened:
            fence = opened.group(1)
        elif not _RULE.fullmatch(line):
            kept.append(line)
    return "\n".join(kept)


def style_counts(text: str, tokens: int | None = None) -> StyleCounts:
    """The style of one answer; `tokens` is the backend's count when it gave one."""
    prose = outside_code(text)
    return StyleCounts(
        tokens=tokens if tokens is not None and tokens >= 0 else estimate_tokens(text),
        headers=len(_HEADER.findall(prose)),
        lists=len(_LIST_ITEM.findall(prose)),
        bold=len(_BOLD.findall(prose)),
    )


def style_differences(counts_a: NDArray[np.float64], counts_b: NDArray[np.float64]) -> NDArray[np.float64]:
    """Per battle and feature, (a - b) / (a + b + 1): how much more of it side A had, between -1 and 1.

    `counts_a`, `counts_b`: arrays (battles, features) of each side's counts (tokens summed over the rounds).
    """
    import numpy as np

    a = np.asarray(counts_a, dtype=np.float64)
    b = np.asarray(counts_b, dtype=np.float64)
    return (a - b) / (a + b + 1.0)
