"""Finding model names and identity words in replies, without flagging ordinary text."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


# Pieces a streamed answer is made of here: ordinary words, names split by separators or chunk edges, scripts
# without spaces, full-width and decomposed letters (NFKC composes them), and letters that block a match.
PIECES = [
    "Je suis ",
    "vigogne",
    "Vigogne",
    " 2",
    "-",
    "7b",
    "_chat",
    "Claude",
    "Claud",
    "e",
    "s",
    "tte",
    " ",
    "\n",
    "我是",
    "维戈",
    "涅",
    "llama",
    "2",
    "Ｃｌａｕｄｅ",
    "Cla\u0301ude",
    "e\u0301",
    "GPT",
    "-4",
    "o",
    "４",
    "Open",
    "AI",
    ".",
    "x",
    "클로드",
    "입니다",
    "belle-7",
    "B",
    "Isa",
    "\u0300",
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(PIECES), max_size=120), st.lists(st.integers(1, 150), min_size=1, max_size=40))
def test_a_growing_text_is_flagged_at_the_same_moment_as_by_reading_it_whole(
    detector: LeakDetector, pieces: list[str], cuts: list[int]
) -> None:
    """Fed in chunks of any size, the scanner first flags the text exactly when a whole reading first would."""
    text = "".join(pieces)
    ends, at = [], 0
    for cut in cuts * (len(text) // max(1, sum(cuts)) + 1):
        at = min(len(text), at + cut)
        ends.append(at)
        if at == len(text):
            break
    scan = detector.scan()
    by_scan = next((end for end in ends if scan.find(text[:end]) is not None), None)
    whole = next((end for end in ends if detector.find(text[:end]) is not None), None)
    assert by_scan == whole


def test_the_scanner_reads_only_new_text_and_a_bounded_tail(detector: LeakDetector) -> None:
    """A name far behind the new text is not read again (each check costs the new text, not the whole answer)."""
    early = "I am Claude. " + "Plain words follow here. " * 400
    assert detector.find(early) == "Claude"
    assert detector.find(early, since=len(early) - 5) is None  # the name is far outside the tail
    scan = detector.scan()
    assert scan.find("Plain words, then Cla") is None
    assert scan.find("Plain words, then Claude") == "Claude"  # a name split across chunks is found once whole
    assert detector.find(". " * 50 + "Claude", since=100 + 3) == "Claude"  # it began before `since`, ends after


def test_a_text_that_gets_shorter_is_read_again(detector: LeakDetector) -> None:
    scan = detector.scan()
    assert scan.find("Plain text " * 30) is None
    assert scan.find("I am Claude") == "Claude"
