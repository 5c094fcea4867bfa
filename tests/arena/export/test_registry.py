"""The format registry and the one vote filter: what every format shares, read through real exports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from arena.domain import Outcome, VoteFilter
from arena.export import formats
from arena.export.formats.lmsys import LMSYS_WINNER
from arena.export.run import EXPORT_FILTER, export
from arena.export.writers import ExportError
from tests.arena.export.conftest import JUDGES, History


def test_exports_leave_self_play_out_like_the_leaderboard_unless_asked(history: History, tmp_path: Path) -> None:
    assert VoteFilter() == EXPORT_FILTER
    out = tmp_path / "lmsys.jsonl"
    summary = export(history.engine, "lmsys", out, VoteFilter(), judges=JUDGES)
    questions = [json.loads(line)["conversation_a"][-2]["content"] for line in out.read_text("utf-8").splitlines()]
    assert "Self?" not in questions and len(questions) == 7  # 10 votes: one named, one leaked, one self-play
    assert summary.excluded == {
        "cast with the names visible (add --include-named)": 1,
        "an answer revealed a model's identity (add --include-leaks)": 1,
        "a model played itself (add --include-self-play)": 1,
    }
    export(history.engine, "lmsys", out, VoteFilter(include_self_play=True), judges=JUDGES)
    assert "Self?" in [
        json.loads(line)["conversation_a"][-2]["content"] for line in out.read_text("utf-8").splitlines()
    ]
    raw = tmp_path / "raw.jsonl"  # audits hold everything, whatever the vote filters say
    export(history.engine, "raw", raw, VoteFilter(), judges=JUDGES)
    assert any(json.loads(line)["mode"] == "self_play" for line in raw.read_text("utf-8").splitlines())


def test_every_outcome_has_an_lmsys_winner() -> None:
    assert set(LMSYS_WINNER) == set(Outcome)
    assert LMSYS_WINNER[Outcome.BOTH_BAD] == "tie (bothbad)"


def test_an_unknown_format_is_refused_naming_the_choices() -> None:
    with pytest.raises(ExportError, match="choose one of dpo, kto"):
        formats.get("csv")


@pytest.mark.parametrize("name", list(formats.FORMATS))
def test_every_format_record_is_complete(name: str) -> None:
    fmt = formats.FORMATS[name]
    assert fmt.name == name and fmt.explain and fmt.trainer and fmt.reads
