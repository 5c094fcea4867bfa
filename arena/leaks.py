"""Spotting replies that reveal which model wrote them, so a blind vote stays blind."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

# Model families and vendors a model may name itself by. Ordinary words in common languages are left out on
# purpose ("belle", "alpaca", "falcon", "gemma", "grok", "palm", "bard", "mistral" alone) because every reply
# that uses them would be flagged; add such names per deployment through the contestants' aliases instead.
DEFAULT_IDENTITY_WORDS: tuple[str, ...] = (
    "OpenAI",
    "ChatGPT",
    "InstructGPT",
    "GPT-3",
    "GPT-3.5",
    "GPT-4",
    "GPT-4o",
    "Anthropic",
    "Claude",
    "Google DeepMind",
    "DeepMind",
    "Gemini",
    "LaMDA",
    "Meta AI",
    "LLaMA",
    "Mistral AI",
    "Mixtral",
    "Vicuna",
    "LMSYS",
    "FastChat",
    "HuggingChat",
    "Qwen",
    "Alibaba Cloud",
    "通义千问",
    "DeepSeek",
    "深度求索",
    "ChatGLM",
    "智谱清言",
    "ERNIE Bot",
    "文心一言",
    "讯飞星火",
    "百川智能",
    "Baichuan",
    "xAI",
)

# What may stand between the parts of a multi-word or hyphenated name in a reply: "Vigogne 2 7B chat",
# "vigogne-2-7b-chat", "vigogne_2_7b_chat", "gpt4". Bounded so a match never spans a paragraph.
_SEPARATOR = r"[\s_.\-\u2010-\u2015\u2212]{0,3}"

# Unicode name prefixes of scripts written without spaces between words: names there can only match as substrings.
_UNSPACED_SCRIPTS = frozenset(
    {
        "CJK",
        "IDEOGRAPHIC",
        "HIRAGANA",
        "KATAKANA",
        "KATAKANA-HIRAGANA",
        "BOPOMOFO",
        "YI",
        "THAI",
        "LAO",
        "KHMER",
        "MYANMAR",
        "TIBETAN",
    }
)


class _Kind(Enum):
    DIGIT = "digit"
    LETTER = "letter"  # a letter or mark of a script that separates words with spaces
    HANGUL = "hangul"
    UNSPACED = "unspaced"
    OTHER = "other"


def _kind(char: str) -> _Kind:
    category = unicodedata.category(char)
    if category[0] == "N":
        return _Kind.DIGIT
    if category[0] not in "LM":
        return _Kind.OTHER
    script = unicodedata.name(char, "").partition(" ")[0]
    if script in _UNSPACED_SCRIPTS:
        return _Kind.UNSPACED
    return _Kind.HANGUL if script == "HANGUL" else _Kind.LETTER


def _normalise(text: str) -> str:
    # NFKC folds full-width and compatibility forms; casefold can leave non-NFKC text behind, hence the second pass.
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def _tokens(term: str) -> list[str]:
    """Letters, marks and digits of a normalised term, split at separators and at letter/digit changes."""
    tokens: list[str] = []
    current = ""
    for char in term:
        kind = _kind(char)
        if kind is _Kind.OTHER:
            if current:
                tokens.append(current)
            current = ""
            continue
        if current and (kind is _Kind.DIGIT) != (_kind(current[-1]) is _Kind.DIGIT):
            tokens.append(current)
            current = ""
        current += char
    if current:
        tokens.append(current)
    return tokens


@dataclass(frozen=True)
class _Term:
    label: str  # as configured, returned to the caller
    pattern: re.Pattern[str]
    first_char: str
    length: int
    whole_word: bool
    first: _Kind
    last: _Kind


def _compile_term(label: str) -> _Term | None:
    tokens = _tokens(_normalise(label))
    if not tokens:
        return None
    source = _SEPARATOR.join(re.escape(token) for token in tokens)
    unspaced = any(_kind(char) is _Kind.UNSPACED for token in tokens for char in token)
    return _Term(
        label=label,
        pattern=re.compile(source),
        first_char=tokens[0][0],
        length=sum(map(len, tokens)),
        whole_word=not unspaced,
        first=_kind(tokens[0][0]),
        last=_kind(tokens[-1][-1]),
    )


def _blocks(edge: _Kind, neighbour: _Kind, *, after: bool) -> bool:
    """Whether a neighbouring character makes a match part of a longer word."""
    if edge is _Kind.DIGIT:
        return neighbour is _Kind.DIGIT
    if after:
        # Korean particles and copulas attach to the word before them: "클로드입니다", "Claude가" name Claude.
        return neighbour is _Kind.LETTER
    return neighbour in (_Kind.LETTER, _Kind.HANGUL)


class LeakDetector:
    """Finds contestant names, aliases and identity words in text, as whole words where the script has spaces."""

    def __init__(self, names: Iterable[str], words: Iterable[str] = DEFAULT_IDENTITY_WORDS) -> None:
        """Compile the terms once; names are display names and aliases, words are model families and vendors."""
        terms: dict[str, _Term] = {}
        for label in [*names, *words]:
            term = _compile_term(label)
            if term is not None:
                terms.setdefault(term.pattern.pattern, term)  # the first spelling configured wins
        # Longest first, so "GPT-4o" is reported rather than "GPT-4" where both match at the same place.
        ordered = sorted(terms.values(), key=lambda term: -term.length)
        self._by_first_char: dict[str, list[_Term]] = {}
        for term in ordered:
            self._by_first_char.setdefault(term.first_char, []).append(term)
        # One alternation finds candidate places quickly; word boundaries are then checked in Python, only there,
        # because the re module cannot tell scripts apart (a Latin name inside Chinese text has no spaces around it).
        self._candidates = re.compile("|".join(term.pattern.pattern for term in ordered)) if ordered else None
        # How far back from new text a match that ends in it can begin, in characters of the raw text: the longest
        # term with its widest separators, times 3 (normalising composes up to three characters into one), plus
        # room so that what is read there is normalised as it is in the whole text.
        longest = max((term.length + 3 * term.pattern.pattern.count(_SEPARATOR) for term in ordered), default=0)
        self.reach = 3 * longest + 16

    def find(self, text: str, since: int = 0) -> str | None:
        """The first term found in the text, as configured, or None. With `since` (a text that keeps growing, read
        up to `since` before), only text from `since - reach` on is read: any term that ends after `since` lies
        there, and one found there that ended before is one a whole reading would find as well."""
        if self._candidates is None or not text:
            return None
        begin = max(0, since - self.reach)
        normalised = _normalise(text[begin:])
        # a match at the very start of a window has a neighbour it cannot see; it ended long before `since` anyway
        position = 0 if begin == 0 else 1
        while (candidate := self._candidates.search(normalised, position)) is not None:
            start = candidate.start()
            for term in self._by_first_char[normalised[start]]:
                match = term.pattern.match(normalised, start)
                if match is not None and self._stands_alone(term, normalised, start, match.end()):
                    return term.label
            position = start + 1
        return None

    def scan(self) -> LeakScan:
        """A scanner for one text that grows as it streams."""
        return LeakScan(self)

    def find_in(self, texts: Iterable[str]) -> str | None:
        """The first term found in any of the texts, or None."""
        for text in texts:
            found = self.find(text)
            if found is not None:
                return found
        return None

    @staticmethod
    def _stands_alone(term: _Term, text: str, start: int, end: int) -> bool:
        if not term.whole_word:
            return True
        if start > 0 and _blocks(term.first, _kind(text[start - 1]), after=False):
            return False
        return not (end < len(text) and _blocks(term.last, _kind(text[end]), after=True))


class LeakScan:
    """Looks for a leak in a streamed text as it grows, reading only the new text and a bounded tail before it, so
    a long answer costs linear time in all, not quadratic (each check used to read the whole answer again)."""

    def __init__(self, detector: LeakDetector) -> None:
        """Start at an empty text."""
        self._detector = detector
        self._seen = 0

    def find(self, text: str) -> str | None:
        """The first term found in the text's new part or the tail before it, or None (a text that got shorter is
        read again from its start)."""
        since = self._seen if len(text) >= self._seen else 0
        self._seen = len(text)
        return self._detector.find(text, since)
