"""The `jsonl-chatml` SFT export: the chosen answers as TRL messages chats, skipped and de-duplicated like `dpo`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from datasets import load_dataset
from trl.data_utils import is_conversational, maybe_apply_chat_template

from arena.__main__ import main
from arena.domain import Outcome, VoteFilter
from arena.export import formats
from arena.export.card import stage
from arena.export.formats import Skip
from arena.export.run import Summary, export
from arena.export.writers import ExportError
from backends.demo import DemoModels
from tests.arena.export.conftest import JUDGES, History, battle

FILTER = VoteFilter(include_self_play=True)


def run(h: History, fmt: str, tmp_path: Path) -> tuple[Summary, list[dict[str, Any]]]:
    out = tmp_path / f"{fmt}.jsonl"
    summary = export(h.engine, fmt, out, FILTER, judges=JUDGES)
    return summary, [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def test_each_row_is_the_winners_chat_up_to_the_judged_answer(history: History, tmp_path: Path) -> None:
    summary, rows = run(history, "jsonl-chatml", tmp_path)
    assert rows[0]["messages"] == [
        {"role": "user", "content": "Quelle est la capitale ?"},
        {"role": "assistant", "content": "Paris."},
    ]
    # round 2 was won by B: B's own conversation so far, its judged answer last
    assert rows[1]["messages"] == [
        {"role": "user", "content": "Quelle est la capitale ?"},
        {"role": "assistant", "content": "Lyon."},
        {"role": "user", "content": "Et sa population ?"},
        {"role": "assistant", "content": "Trois."},
    ]
    assert [(r["battle_id"][:2], r["model"], r["turn"]) for r in rows] == [
        ("b1", "vigogne-7b", 1),
        ("b1", "alpaca-zh", 2),
        ("b6", "vigogne-7b", 1),
        ("b8", "alpaca-zh", 1),
        ("ba", "vigogne-7b", 1),
    ]
    assert summary.rows == 5 and summary.read == 8
    assert rows[-1]["stopped"] is True and rows[2]["self_play"] is True
    assert all(r["judge"].startswith("arena_user_") for r in rows)


def test_skips_and_duplicates_are_counted_as_for_dpo(history: History, tmp_path: Path) -> None:
    battle(history, "be" + "0" * 30, [("Empty?", "", "An answer.", Outcome.B)])  # a win over an empty answer
    summary, rows = run(history, "jsonl-chatml", tmp_path)
    assert summary.skipped == {Skip.TIE: 1, Skip.BOTH_BAD: 1, Skip.DUPLICATE: 1, Skip.EMPTY: 1}
    assert summary.excluded == {
        "cast with the names visible (add --include-named)": 1,
        "an answer revealed a model's identity (add --include-leaks)": 1,
    }
    dpo_summary, dpo = run(history, "dpo", tmp_path)
    assert dpo_summary.skipped == summary.skipped
    # the chats are exactly the DPO rows' prompt and chosen answer
    assert [r["messages"] for r in rows] == [r["prompt"] + r["chosen"] for r in dpo]
    assert "1 duplicate row skipped." in summary.lines()


def test_rows_have_trls_messages_keys_and_only_the_two_chat_roles(history: History, tmp_path: Path) -> None:
    _, rows = run(history, "jsonl-chatml", tmp_path)
    for row in rows:
        assert next(iter(row)) == "messages"
        assert all(set(m) == {"role", "content"} for m in row["messages"])
        roles = [m["role"] for m in row["messages"]]
        assert roles == ["user", "assistant"] * (len(roles) // 2) and roles


def test_trl_reads_the_file_as_conversational_language_modelling(
    history: History, tmp_path: Path, demo_models: DemoModels
) -> None:
    from transformers import AutoTokenizer

    out = tmp_path / "chatml.jsonl"
    export(history.engine, "jsonl-chatml", out, FILTER, judges=JUDGES)
    data = load_dataset("json", data_files=str(out), split="train")
    assert data.num_rows == 5 and "messages" in data.column_names
    tokenizer = AutoTokenizer.from_pretrained(demo_models.base, local_files_only=True)
    for example in data:
        assert is_conversational(example)
        rendered = maybe_apply_chat_template(example, tokenizer)
        assert isinstance(rendered["text"], str)
        assert example["messages"][-1]["content"] in rendered["text"]


def test_json_lines_only_and_listed_where_formats_are_chosen(
    history: History, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ExportError, match="The jsonl-chatml format is written as JSON Lines only"):
        export(history.engine, "jsonl-chatml", tmp_path / "x.parquet", FILTER, judges=JUDGES)
    assert "jsonl-chatml" in formats.FORMATS
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    assert "jsonl-chatml" in capsys.readouterr().out


def test_the_dataset_card_names_the_sft_trainer(history: History, tmp_path: Path) -> None:
    out = tmp_path / "chatml.jsonl"
    summary = export(history.engine, "jsonl-chatml", out, FILTER, judges=JUDGES)
    text = (stage(out, summary, FILTER, {}, tmp_path / "staged") / "README.md").read_text(encoding="utf-8")
    assert "TRL `SFTTrainer`" in text and "**5 rows** from 8 records" in text
