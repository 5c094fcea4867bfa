"""Finding model names and identity words in replies, without flagging ordinary text."""

from __future__ import annotations

import time

import pytest

from arena.leaks import DEFAULT_IDENTITY_WORDS, LeakDetector


@pytest.fixture(scope="module")
def detector() -> LeakDetector:
    return LeakDetector(["vigogne-2-7b-chat", "Vigogne", "维戈涅", "belle-7b", "클로드"], DEFAULT_IDENTITY_WORDS)


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("I am VIGOGNE, a helpful assistant.", "Vigogne"),
        ("Je suis vigogne.", "Vigogne"),
        ("我是维戈涅，很高兴为你服务。", "维戈涅"),
        ("저는 클로드입니다.", "클로드"),  # the copula attaches to the name in Korean
        ("Ｉ ａｍ Ｃｌａｕｄｅ.", "Claude"),  # full-width letters fold under NFKC
        ("I was trained by ＯｐｅｎＡＩ.", "OpenAI"),
        ("This is Vigogne 2 7B chat speaking.", "vigogne-2-7b-chat"),
        ("model: vigogne_2_7b_chat", "vigogne-2-7b-chat"),
        ("VIGOGNE-2-7B-CHAT", "vigogne-2-7b-chat"),
        ("As an AI developed by OpenAI, I cannot browse.", "OpenAI"),
        ("I'm ChatGPT.", "ChatGPT"),
        ("Based on gpt4.", "GPT-4"),
        ("Built on GPT-4o.", "GPT-4o"),  # the longer name wins where both match
        ("Powered by Llama 2.", "LLaMA"),
        ("I run on llama2-13b.", "LLaMA"),
        ("我用的是llama模型。", "LLaMA"),  # no spaces around a Latin name in Chinese text
        ("我是通义千问，由阿里云开发。", "通义千问"),
        ("Made by Mistral AI.", "Mistral AI"),
        ("mistralai/Mixtral-8x7B", "Mistral AI"),
        ("A belle-7B answer.", "belle-7b"),
    ],
)
def test_names_and_identity_words_are_found(detector: LeakDetector, text: str, found: str) -> None:
    assert detector.find(text) == found


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Llamas are animals from South America.",
        "Isabelle est belle.",  # a contestant is named "belle-7b": only the full name counts
        "Claudette and Claudia went out.",  # a word inside a longer word
        "The mistral blows in Provence.",
        "We met at GPT-40 street.",
        "Alpacas and falcons.",
        "   \n\t",
    ],
)
def test_ordinary_text_is_not_flagged(detector: LeakDetector, text: str) -> None:
    assert detector.find(text) is None


def test_configured_word_matches_whole_words_only() -> None:
    detector = LeakDetector([], ["llama"])
    assert detector.find("llamas are animals") is None
    assert detector.find("a llama, an animal") == "llama"


def test_first_match_in_the_text_is_reported(detector: LeakDetector) -> None:
    assert detector.find("Unlike Claude, I am Vigogne.") == "Claude"


def test_find_in_searches_every_text(detector: LeakDetector) -> None:
    assert detector.find_in(["Hello!", "I was made by Anthropic."]) == "Anthropic"
    assert detector.find_in(["Hello!", "Bonjour !"]) is None
    assert detector.find_in([]) is None


def test_no_terms_finds_nothing() -> None:
    assert LeakDetector([], []).find("I am Claude") is None
    assert LeakDetector(["---"], []).find("--- Claude ---") is None


def test_default_words_leave_out_ordinary_words() -> None:
    lowered = {word.casefold() for word in DEFAULT_IDENTITY_WORDS}
    assert not lowered & {"belle", "alpaca", "falcon", "mistral", "bard", "palm", "gemma"}


def test_long_text_is_fast(detector: LeakDetector) -> None:
    text = "The quick brown fox jumps over the lazy dog, again and again. " * 2_000  # ~126,000 characters
    started = time.perf_counter()
    assert detector.find(text + "I am Claude.") == "Claude"
    assert time.perf_counter() - started < 0.5
