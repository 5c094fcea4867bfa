"""The offline categoriser: agreement with a labelled sample the project wrote, and its structural categories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from arena.categories import BY_NAME, CATEGORIES, LONG_QUERY_TOKENS, bit, categorise, mask_of, names

SAMPLE = Path(__file__).parents[1] / "data" / "categories"
LABELLED = ("coding", "math", "creative_writing", "hard_prompts")


def _scores(file: str) -> tuple[float, dict[str, float]]:
    """Exact-match share and each labelled category's F1 on one sample file."""
    rows = [json.loads(line) for line in (SAMPLE / file).read_text(encoding="utf-8").splitlines()]
    exact = 0
    found = {name: [0, 0, 0] for name in LABELLED}  # true positives, false positives, false negatives
    for row in rows:
        got = set(names(categorise(row["prompt"]))) & set(LABELLED)
        want = set(row["categories"])
        exact += got == want
        for name in LABELLED:
            found[name][0] += name in got and name in want
            found[name][1] += name in got and name not in want
            found[name][2] += name not in got and name in want
    f1 = {name: 2 * tp / (2 * tp + fp + fn) for name, (tp, fp, fn) in found.items()}
    return exact / len(rows), f1


def test_the_rules_agree_with_the_development_sample() -> None:
    exact, f1 = _scores("dev.jsonl")
    assert exact >= 0.95
    assert min(f1.values()) >= 0.95, f1


def test_the_rules_agree_with_the_held_out_sample() -> None:
    # written by someone who never saw the rules: 58/70 exact at its first reading; it has been read since to fix
    # general gaps (65/70 now), so this guards against regressions rather than measuring generalisation
    exact, f1 = _scores("heldout.jsonl")
    assert exact >= 0.85
    assert min(f1.values()) >= 0.85, f1


def test_the_sample_covers_six_languages_and_every_label() -> None:
    for file in ("dev.jsonl", "heldout.jsonl"):
        rows = [json.loads(line) for line in (SAMPLE / file).read_text(encoding="utf-8").splitlines()]
        assert {row["language"] for row in rows} == {"English", "French", "Chinese", "Korean", "Spanish", "German"}
        for name in LABELLED:
            assert sum(name in row["categories"] for row in rows) >= 10
        assert sum(not row["categories"] for row in rows) >= 16


@pytest.mark.parametrize(
    "question",
    [
        "tell me the history of the Python snake",
        "what year did the Code Napoléon come into force",
        "what is the story behind the Eiffel tower",
        "translate 'I love programming' into French",
        "请帮我把这句话翻译成英文：我喜欢编程。",
        "Give me 3 ideas for a birthday party",
        "what is my zip code for 75011 Paris",
        "",
        # everyday questions a review found miscategorised by earlier rules
        "How should I react when my boss yells at me?",
        "Where do pandas live in the wild?",
        "What's a flask used for in a chemistry lab?",
        "Ideas for a birthday bash on a budget",
        "Is there an exception to the 90-day Schengen rule?",
        "Compile a list of good restaurants in Lyon",
        "Paris => Lyon by train: how long?",
        "Select the best option from the list: red, blue, green",
        "我想做一个短视频脚本的选题清单",
        "드레스 코드가 뭐예요?",
        "Was ist eigentlich der Unterschied zwischen Kaffee und Espresso?",
        "Comment résoudre un conflit avec un collègue ?",
        "¿Cómo resolver problemas de pareja?",
        "Wie löse ich einen Konflikt mit meinem Nachbarn?",
        "What is the speed limit of German highways?",
        "Tell me about the Bermuda triangle",
        "Is The Matrix a good film?",
        "What is a proof of address?",
        "What are the lyrics of Bohemian Rhapsody?",
        "Who wrote the poem The Raven?",
        "How many verses are in the Bible?",
        "这首歌的歌词是什么意思？",
        "Erzähl mir etwas über die Geschichte Berlins",
        "I wrote a function that translates DNA to protein, but it's slow: why?",
    ],
)
def test_words_that_only_look_like_a_category_are_none(question: str) -> None:
    assert names(categorise(question)) == []


@pytest.mark.parametrize(
    ("question", "category"),
    [
        ("def add(a, b):\n    return a + b\n\nwhy does this fail?", "coding"),
        ("写一个Python函数计算斐波那契数列", "coding"),
        ("파이썬에서 리스트를 정렬하는 방법", "coding"),
        ("Résous 2x + 3 = 11", "math"),
        ("求极限 lim(x→0) sin x / x", "math"),
        ("Schreib ein Gedicht über den Herbst", "creative_writing"),
        ("写一首关于月亮的诗", "creative_writing"),
        ("첫눈을 주제로 시를 써줘", "creative_writing"),
        ("Let x = 3. What is 2x + 1?", "math"),
        ("I wrote a function that translates DNA to protein, but it's slow:\ndef translate(seq):\n    pass", "coding"),
    ],
)
def test_each_language_names_its_category(question: str, category: str) -> None:
    assert category in names(categorise(question))


def test_a_later_round_is_multi_turn_and_a_long_question_is_a_long_query() -> None:
    assert names(categorise("and then?", turn_index=0)) == []
    assert names(categorise("and then?", turn_index=1)) == ["multi_turn"]
    long = " ".join(["word"] * LONG_QUERY_TOKENS)
    assert "long_query" in names(categorise(long))
    assert "long_query" not in names(categorise(" ".join(["word"] * (LONG_QUERY_TOKENS - 1))))
    assert "long_query" in names(categorise("字" * LONG_QUERY_TOKENS))  # unspaced scripts: a token per character


def test_a_pasted_program_is_long_but_not_hard() -> None:
    code = "```python\n" + "\n".join(f"x{i} = compute({i}, precise=True)" for i in range(200)) + "\n```"
    found = names(categorise(code + "\nWhy is my program slow?"))
    assert "coding" in found and "long_query" in found and "hard_prompts" not in found


def test_the_same_question_always_gets_the_same_categories() -> None:
    text = "Design a rate limiter in Go for our API: at most 100 requests per user per minute, exact counts."
    assert len({categorise(text) for _ in range(5)}) == 1


def test_masks_and_names_round_trip_and_unknown_names_are_refused() -> None:
    bits = [c.bit for c in CATEGORIES]
    assert len(set(bits)) == len(bits) and all(b & (b - 1) == 0 for b in bits)  # one distinct bit each
    assert names(mask_of(["math", "coding"])) == ["coding", "math"]
    assert names(None) == [] and names(0) == []
    assert bit("long_query") == BY_NAME["long_query"].bit
    with pytest.raises(ValueError, match="there is no category 'poetry'"):
        bit("poetry")


def test_a_huge_question_is_read_in_bounded_time() -> None:
    found = categorise("if (a) { b(); }\n" * 200_000)  # 3 MB: the rules read its start only
    assert "coding" in names(found) and "long_query" in names(found)
    # inputs that make careless patterns backtrack quadratically (each took seconds before): a slowdown shows as a
    # slow test (speed targets belong to benchmarks); what the rules make of such noise is checked here
    for piece, expected in [
        ("\n", []),
        ("\n ", []),
        ("a", []),
        ("1", []),
        ("字", ["long_query"]),
        ("<a ", ["long_query"]),
        ("1+", ["long_query"]),
        ("a.b", ["long_query"]),
        ("a(", ["long_query"]),
        ("$x", ["long_query"]),
        ("시 ", ["long_query"]),
        ("select a ", ["long_query"]),
    ]:
        assert names(categorise(piece * (20_000 // len(piece)))) == expected, piece
