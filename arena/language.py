"""The language of a user message, detected offline with lingua's bundled models."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from lingua import Language, LanguageDetectorBuilder
from lingua import LanguageDetector as _Lingua

UNKNOWN = "unknown"

DEFAULT_LANGUAGES: tuple[str, ...] = (
    "English",
    "Chinese",
    "French",
    "German",
    "Spanish",
    "Italian",
    "Portuguese",
    "Dutch",
    "Russian",
    "Japanese",
    "Korean",
    "Arabic",
    "Hindi",
    "Turkish",
    "Vietnamese",
)

# Below this many letters ("ok", "hi", "中") no detector can tell languages apart; a CJK character or Hangul
# syllable counts as two because it carries about as much as a short Latin word.
_MIN_LETTER_WEIGHT = 3
# Lingua's cost grows with the text; the start of a long message tells its language as well as the whole.
_SAMPLE_CHARS = 2_000


def _name(language: Language) -> str:
    return language.name.capitalize()


def _letter_weight(text: str) -> int:
    return sum(2 if ord(char) >= 0x2E80 else 1 for char in text if char.isalpha())


class LanguageDetector:
    """Names the language of a text ("English", "Chinese" …) or says "unknown"; safe to share between threads."""

    def __init__(self, languages: Sequence[str] | None = None, *, min_confidence: float = 0.5) -> None:
        """Check the language names now; the models are loaded on first use (or by warm_up), not here."""
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be between 0 and 1, not {min_confidence}.")
        known = {_name(language).casefold(): language for language in Language.all()}
        chosen: list[Language] = []
        for name in DEFAULT_LANGUAGES if languages is None else languages:
            language = known.get(name.strip().casefold())
            if language is None:
                valid = ", ".join(sorted(_name(language) for language in known.values()))
                raise ValueError(f"Unknown language {name!r}; valid names are: {valid}.")
            if language not in chosen:
                chosen.append(language)
        if not chosen:
            raise ValueError("Please name at least one language to detect.")
        self._languages = tuple(chosen)
        self._min_confidence = min_confidence
        self._lock = threading.Lock()
        self._detector: _Lingua | None = None

    @property
    def languages(self) -> tuple[str, ...]:
        """The names this detector chooses from."""
        return tuple(_name(language) for language in self._languages)

    @property
    def built(self) -> bool:
        """Whether the models are loaded."""
        return self._detector is not None

    def warm_up(self) -> None:
        """Load the models now (about 2 s, ~300 MB), e.g. in a worker thread at start-up, not on a user's request."""
        self._lingua()

    def detect(self, text: str) -> str:
        """The language's English name, or "unknown" when the text is too short or the guess too unsure."""
        sample = text[:_SAMPLE_CHARS]
        if _letter_weight(sample) < _MIN_LETTER_WEIGHT:
            return UNKNOWN
        confidences = self._lingua().compute_language_confidence_values(sample)
        if not confidences or confidences[0].value < self._min_confidence:
            return UNKNOWN
        return _name(confidences[0].language)

    def _lingua(self) -> _Lingua:
        detector = self._detector
        if detector is None:
            with self._lock:  # two threads arriving first must not both spend seconds loading models
                if self._detector is None:
                    # High accuracy mode: fast enough (well under 1 ms on a sentence, about 2 ms on 2,000 characters)
                    # and, unlike low accuracy mode, reliable on the short messages people type. Preloading moves
                    # the loading cost here instead of onto whichever later message first needs a model.
                    builder = LanguageDetectorBuilder.from_languages(*self._languages)
                    self._detector = builder.with_preloaded_language_models().build()
                detector = self._detector
        return detector
