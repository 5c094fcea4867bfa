"""Reading a judge's verdict, the swap, and the judging prompt (which never names a contestant)."""

from __future__ import annotations

from pathlib import Path

import pytest

from arena.domain import Outcome
from arena.judging import OUTCOMES, Verdict, combine, load_template, parse_verdict, swapped_back


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ("A is clearer.\n[[A]]", Verdict.A),
        ("Final verdict: [[B]]", Verdict.B),
        ("Both fine. [[C]]", Verdict.TIE),
        ("Neither answers. [[D]]", Verdict.BOTH_BAD),
        ("[[ A ]] ... as I said, [[A]]", Verdict.A),  # the same mark twice is one verdict
        ("A is better", Verdict.NONE),  # no mark: never guessed from prose
        ("[[A]] no wait [[B]]", Verdict.NONE),  # two different marks: no verdict
        ("[A]", Verdict.NONE),
        ("[[E]]", Verdict.NONE),
        ("", Verdict.NONE),
    ],
)
def test_the_verdict_is_the_one_bracketed_mark(text: str, verdict: Verdict) -> None:
    assert parse_verdict(text) is verdict


def test_the_swap_keeps_only_consistent_verdicts() -> None:
    assert swapped_back(Verdict.A) is Verdict.B and swapped_back(Verdict.B) is Verdict.A
    assert swapped_back(Verdict.TIE) is Verdict.TIE and swapped_back(Verdict.NONE) is Verdict.NONE
    # the second reading saw B's answer first: its "[[B]]" means the first-shown answer A
    assert combine(Verdict.A, swapped_back(Verdict.B)) is Verdict.A
    assert combine(Verdict.A, swapped_back(Verdict.A)) is Verdict.INCONSISTENT  # it followed the position
    assert combine(Verdict.TIE, swapped_back(Verdict.TIE)) is Verdict.TIE
    assert combine(Verdict.TIE, swapped_back(Verdict.A)) is Verdict.INCONSISTENT  # not a tie
    assert combine(Verdict.NONE, swapped_back(Verdict.A)) is Verdict.NONE
    assert combine(Verdict.A, Verdict.NONE) is Verdict.NONE
    assert combine(Verdict.BOTH_BAD, None) is Verdict.BOTH_BAD  # no swap: the one reading
    assert set(OUTCOMES) == {Verdict.A, Verdict.B, Verdict.TIE, Verdict.BOTH_BAD}
    assert OUTCOMES[Verdict.BOTH_BAD] is Outcome.BOTH_BAD


def test_the_prompt_holds_the_question_and_answers_only() -> None:
    template = load_template("pairwise")
    system, user = template.messages("Capital of France?", "Paris.", "Lyon.", reference="Paris")
    assert system["role"] == "system" and "[[A]]" in system["content"] and "[[D]]" in system["content"]
    assert user["role"] == "user"
    text = user["content"]
    assert text.index("Capital of France?") < text.index("Paris.") < text.index("Lyon.")
    assert "[A reference answer, known to be correct]\nParis" in text
    assert "reference" not in template.messages("q", "a", "b")[1]["content"].lower()


def test_a_missing_template_is_refused_with_its_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="judge template 'nope' needs"):
        load_template("nope")
    (tmp_path / "mine.system.jinja").write_text("Judge.")
    (tmp_path / "mine.user.jinja").write_text("{{ question }} | {{ answer_a }} | {{ answer_b }}")
    assert load_template(str(tmp_path / "mine")).messages("q", "a", "b")[1]["content"] == "q | a | b"
