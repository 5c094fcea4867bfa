"""The push-to-hub staging folder and its generated dataset card (the upload call itself needs the hub)."""

from __future__ import annotations

from pathlib import Path

import yaml
from datasets import load_dataset

from arena.domain import VoteFilter
from arena.export.card import model_notes, stage
from arena.export.run import export
from tests.arena.export.conftest import JUDGES, History

CONFIG = """
models:
  - name: vigogne-7b
    license: llama2
    description: French instruction-following LoRA
    model: /models/vigogne
  - name: alpaca-zh
    license: apache-2.0
    model: /models/alpaca
  - name: belle-7b
    model: /models/belle
"""


def test_staged_folder_holds_the_data_and_a_card_describing_it(history: History, tmp_path: Path) -> None:
    out = tmp_path / "dpo.jsonl"
    summary = export(history.engine, "dpo", out, VoteFilter(include_self_play=True), judges=JUDGES)
    config = tmp_path / "arena.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    folder = stage(out, summary, VoteFilter(include_self_play=True), model_notes(config), tmp_path / "staged")

    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) == [
        "README.md",
        "data/train.jsonl",
    ]
    assert (folder / "data" / "train.jsonl").read_bytes() == out.read_bytes()
    text = (folder / "README.md").read_text(encoding="utf-8")
    front = yaml.safe_load(text.split("---")[1])
    assert front["configs"] == [
        {"config_name": "default", "data_files": [{"split": "train", "path": "data/train.jsonl"}]}
    ]
    assert "dpo" in front["tags"] and front["language"] == ["fr", "zh"]
    assert front["size_categories"] == ["n<1K"]
    assert "**5 rows** from 8 records, dated 2026-03-01 to 2026-03-03 (UTC)." in text
    assert "| vigogne-7b | 4 | llama2 — French instruction-following LoRA |" in text
    assert "| alpaca-zh | 4 | apache-2.0 |" in text
    assert "| belle-7b | 1 | license not stated in the config |" in text
    assert "| French | 4 |" in text and "| Chinese | 1 |" in text
    assert "Skipped 1: tie (not a preference)." in text
    assert "Left out 1 votes: cast with the names visible (add --include-named)." in text
    assert "names hidden until after the vote" in text and "no IP address" in text
    # the hub's loader reads the staged folder the way the card's config says
    data = load_dataset(str(folder), split="train")
    assert data.num_rows == 5 and {"prompt", "chosen", "rejected"} <= set(data.column_names)


def test_without_a_config_licenses_are_marked_unknown(history: History, tmp_path: Path) -> None:
    out = tmp_path / "kto.parquet"
    summary = export(history.engine, "kto", out, VoteFilter(include_self_play=True), judges=JUDGES)
    folder = stage(out, summary, VoteFilter(include_self_play=True), model_notes(None), tmp_path / "staged")
    text = (folder / "README.md").read_text(encoding="utf-8")
    assert (folder / "data" / "train.parquet").exists()
    assert "| vigogne-7b |" in text and "unknown — check the model card" in text
    assert "TRL `KTOTrainer`" in text


def test_a_raw_card_says_everything_is_included(history: History, tmp_path: Path) -> None:
    out = tmp_path / "raw.jsonl"
    summary = export(history.engine, "raw", out, VoteFilter(include_self_play=True), judges=JUDGES)
    text = (stage(out, summary, VoteFilter(include_self_play=True), {}, tmp_path / "staged") / "README.md").read_text(
        encoding="utf-8"
    )
    assert "named and self-play ones and those where an answer revealed a model's identity included" in text
    assert "are left out" not in text
