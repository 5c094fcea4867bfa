"""Detecting the language of a message with lingua's real, bundled models."""

from __future__ import annotations

import threading
import time

import pytest

from arena.language import DEFAULT_LANGUAGES, LanguageDetector


@pytest.fixture(scope="module")
def detector() -> LanguageDetector:
    # Loading the models takes a couple of seconds: once for the module.
    built = LanguageDetector()
    built.warm_up()
    return built


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Can you explain how a transformer model works?", "English"),
        ("Bonjour, pouvez-vous m'expliquer comment fonctionne un transformeur ?", "French"),
        ("请用简单的话解释一下什么是机器学习。", "Chinese"),
        ("안녕하세요, 오늘 날씨가 어때요?", "Korean"),
        ("Wie funktioniert eigentlich ein neuronales Netz?", "German"),
        ("¿Puedes explicarme cómo funciona una red neuronal?", "Spanish"),
        ("Привет, как у тебя дела сегодня?", "Russian"),
        ("こんにちは、今日はいい天気ですね。", "Japanese"),
    ],
)
def test_languages_are_detected(detector: LanguageDetector, text: str, language: str) -> None:
    assert detector.detect(text) == language


@pytest.mark.parametrize("text", ["", "ok", "hi", "12345", "3.14 + 2 = ?!", "   ", "😀👍", "中"])
def test_too_little_to_tell_is_unknown(detector: LanguageDetector, text: str) -> None:
    assert detector.detect(text) == "unknown"


def test_a_very_sure_threshold_gives_unknown_on_ambiguous_text() -> None:
    strict = LanguageDetector(["English", "French"], min_confidence=0.99)
    assert strict.detect("hello there") == "unknown"
    assert strict.detect("The weather is lovely today, let's walk by the river.") == "English"


def test_long_text_is_detected(detector: LanguageDetector) -> None:
    text = "Les chercheurs discutent des mécanismes d'attention dans les grands modèles de langue. " * 100
    assert detector.detect(text) == "French"


def test_constructing_does_not_load_models() -> None:
    started = time.perf_counter()
    lazy = LanguageDetector(["English", "French"])
    assert time.perf_counter() - started < 0.1
    assert not lazy.built
    assert lazy.detect("Where is the railway station, please?") == "English"
    assert lazy.built


def test_names_are_checked_at_construction() -> None:
    with pytest.raises(ValueError, match=r"Unknown language 'Klingon'; valid names are: .*English.*French"):
        LanguageDetector(["English", "Klingon"])
    with pytest.raises(ValueError, match="at least one"):
        LanguageDetector([])
    with pytest.raises(ValueError, match="min_confidence"):
        LanguageDetector(min_confidence=1.5)


def test_names_are_case_insensitive_and_reported_canonically() -> None:
    assert LanguageDetector(["english", " FRENCH ", "English"]).languages == ("English", "French")
    assert LanguageDetector().languages == DEFAULT_LANGUAGES


def test_first_use_from_several_threads_builds_once() -> None:
    shared = LanguageDetector(["English", "German", "Italian"])
    results: list[str] = []
    barrier = threading.Barrier(4)

    def work() -> None:
        barrier.wait()
        results.append(shared.detect("Guten Morgen, wie geht es Ihnen heute?"))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["German"] * 4
