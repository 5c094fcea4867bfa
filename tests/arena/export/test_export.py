"""Exports of a recorded history, read back the way trainers read them: datasets + TRL's own format helpers."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from datasets import load_dataset
from trl.data_utils import is_conversational, maybe_apply_chat_template

from arena.categories import CATEGORIES
from arena.domain import BattleMode, Outcome, VoteFilter
from arena.export.formats import Skip
from arena.export.run import SKIPPED, Summary, export, leaderboard_strengths
from arena.export.writers import ExportError
from backends.demo import DemoModels
from tests.arena.export.conftest import JUDGES, History

LMSYS_KEYS = [
    "question_id",
    "model_a",
    "model_b",
    "winner",
    "judge",
    "conversation_a",
    "conversation_b",
    "turn",
    "anony",
    "language",
    "tstamp",
    "category_tag",
    "is_code",
]


def run(h: History, fmt: str, tmp_path: Path, suffix: str = ".jsonl", **filters: Any) -> tuple[Summary, Path]:
    out = tmp_path / f"{fmt}{suffix}"
    summary = export(h.engine, fmt, out, VoteFilter(**{"include_self_play": True, **filters}), judges=JUDGES)
    return summary, out


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_dpo_rows_pair_winner_and_loser_with_the_history_as_prompt(history: History, tmp_path: Path) -> None:
    summary, out = run(history, "dpo", tmp_path)
    got = rows(out)
    first, second = got[0], got[1]
    assert first["prompt"] == [{"role": "user", "content": "Quelle est la capitale ?"}]
    assert first["chosen"] == [{"role": "assistant", "content": "Paris."}]
    assert first["rejected"] == [{"role": "assistant", "content": "Lyon."}]
    assert (first["model_chosen"], first["model_rejected"], first["turn"]) == ("vigogne-7b", "alpaca-zh", 1)
    # round 2 was won by B: the prompt is B's own conversation so far, the question of round 2 last
    assert second["prompt"] == [
        {"role": "user", "content": "Quelle est la capitale ?"},
        {"role": "assistant", "content": "Lyon."},
        {"role": "user", "content": "Et sa population ?"},
    ]
    assert second["chosen"][0]["content"] == "Trois." and second["rejected"][0]["content"] == "Deux millions."
    assert second["turn"] == 2
    # ties, both-bad, the named vote and the leaked vote are out; the self-play pair is in, flagged
    assert summary.skipped == {Skip.TIE: 1, Skip.BOTH_BAD: 1, Skip.DUPLICATE: 1}
    assert summary.excluded == {
        "cast with the names visible (add --include-named)": 1,
        "an answer revealed a model's identity (add --include-leaks)": 1,
    }
    assert [r["battle_id"][:2] for r in got] == ["b1", "b1", "b6", "b8", "ba"]
    assert [r["self_play"] for r in got] == [False, False, True, False, False]
    assert got[-1]["stopped"] is True and got[0]["stopped"] is False
    assert summary.rows == len(got) == 5


def test_voter_ids_are_anonymised_but_stable(history: History, tmp_path: Path) -> None:
    _, out = run(history, "dpo", tmp_path)
    text = out.read_text(encoding="utf-8")
    assert "session-alice" not in text and "hash-alice" not in text and "session-bob" not in text
    judges = {r["battle_id"][:2]: r["judge"] for r in rows(out)}
    assert judges["b1"] == judges["b8"] != judges["b6"]
    assert judges["b1"].startswith("arena_user_")


def test_filters_on_named_leaks_days_models_languages_and_turns(history: History, tmp_path: Path) -> None:
    def ids(**filters: Any) -> list[str]:
        _, out = run(history, "lmsys", tmp_path, **filters)
        return [r["conversation_a"][-2]["content"][:8] for r in rows(out)]  # the judged question

    everything = ids(include_named=True, include_leaks=True)
    assert len(everything) == 10  # every vote: b1 twice, b2 to b8, ba
    assert "Named?" in everything and "Who are " in everything
    assert "Named?" not in ids(include_leaks=True)
    assert "Who are " not in ids(include_named=True)
    assert ids(since=date(2026, 3, 3)) == ["Quelle e", "你好", "Stop me"]
    assert ids(until=date(2026, 3, 3)) == ["Quelle e", "Et sa po", "Un poème", "Deux plu", "Self?"]
    assert ids(models=("belle-7b", "alpaca-zh")) == ["你好"]
    assert ids(languages=("Chinese",)) == ["你好"]
    assert ids(min_turns=2) == ["Et sa po"]


def test_kto_labels_winners_true_losers_false_both_bad_false_and_adds_chat_ratings(
    history: History, tmp_path: Path
) -> None:
    summary, out = run(history, "kto", tmp_path)
    got = rows(out)
    by = {(r["id"][:2], r["turn"], r["model"], r["completion"][0]["content"]): r["label"] for r in got}
    assert by[("b1", 1, "vigogne-7b", "Paris.")] is True
    assert by[("b1", 1, "alpaca-zh", "Lyon.")] is False
    assert by[("b3", 1, "vigogne-7b", "Cinq.")] is False and by[("b3", 1, "alpaca-zh", "Six.")] is False
    assert not any(r["id"].startswith("b2") for r in got)  # the tie
    assert summary.skipped[Skip.TIE] == 1
    chats = [r for r in got if r["source"] == "chat"]
    assert [(r["model"], r["label"], r["turn"]) for r in chats] == [("vigogne-7b", True, 2), ("belle-7b", False, 1)]
    assert chats[0]["prompt"] == [
        {"role": "user", "content": "Question 1"},
        {"role": "assistant", "content": "Réponse 1"},
        {"role": "user", "content": "Question 2"},
    ]
    assert chats[0]["completion"] == [{"role": "assistant", "content": "Réponse 2"}]


def test_reward_rows_hold_whole_conversations_and_an_optional_margin(history: History, tmp_path: Path) -> None:
    _, out = run(history, "reward", tmp_path)
    first = rows(out)[0]
    assert first["chosen"] == [
        {"role": "user", "content": "Quelle est la capitale ?"},
        {"role": "assistant", "content": "Paris."},
    ]
    assert first["rejected"][-1] == {"role": "assistant", "content": "Lyon."}
    assert "margin" not in first
    strengths = leaderboard_strengths(history.engine, VoteFilter(include_self_play=True))
    out = tmp_path / "margin.jsonl"
    export(history.engine, "reward", out, VoteFilter(include_self_play=True), judges=JUDGES, strengths=strengths)
    margins = [r["margin"] for r in rows(out)]
    assert all(m >= 0 for m in margins) and any(m > 0 for m in margins)


def test_lmsys_records_have_fastchats_schema_with_categories(history: History, tmp_path: Path) -> None:
    _, out = run(history, "lmsys", tmp_path)
    got = rows(out)
    assert all(list(r) == LMSYS_KEYS for r in got)
    winners = [r["winner"] for r in got]
    assert set(winners) == {"model_a", "model_b", "tie", "tie (bothbad)"}
    first = got[0]
    assert first["conversation_a"] == [
        {"role": "user", "content": "Quelle est la capitale ?"},
        {"role": "assistant", "content": "Paris."},
    ]
    assert first["turn"] == 1 and got[1]["turn"] == 2 and len(got[1]["conversation_b"]) == 4
    assert first["anony"] is True and first["language"] == "French"
    assert isinstance(first["tstamp"], float) and first["tstamp"] > 1.7e9
    assert len(first["question_id"]) == 32 and first["question_id"] != got[1]["question_id"]
    assert all(r["judge"].startswith("arena_user_") for r in got)
    # the categories as FastChat's later battle files carry them, under Corral's own tagger name
    tags = [r["category_tag"]["corral_rules_v1"] for r in got]
    assert all(list(t) == [c.name for c in CATEGORIES] for t in tags)
    assert [t["multi_turn"] for t in tags[:2]] == [False, True]
    poem = next(t for r, t in zip(got, tags, strict=True) if r["conversation_a"][0]["content"] == "Un poème ?")
    assert poem["creative_writing"] and not poem["coding"]
    assert all(r["is_code"] is False for r in got)


def test_raw_has_every_battle_and_chat_with_superseded_and_unvoted_rounds(history: History, tmp_path: Path) -> None:
    summary, out = run(history, "raw", tmp_path)
    got = rows(out)
    kinds = [r["kind"] for r in got]
    assert kinds.count("battle") == 10 and kinds.count("chat") == 2
    unvoted = next(r for r in got if r["id"].startswith("b9"))
    assert unvoted["votes"] == [] and unvoted["status"] == "open"
    assert unvoted["conversations"]["a"][1]["params"] == {"seed": 1}
    named = next(r for r in got if r["id"].startswith("b4"))
    assert named["mode"] == "named" and named["votes"][0]["anonymous"] is False
    chat = next(r for r in got if r["kind"] == "chat" and r["models"] == {"model": "vigogne-7b"})
    assert chat["feedback"][0]["rating"] == "up" and chat["feedback"][0]["comment"] == "bien"
    text = out.read_text(encoding="utf-8")
    assert "hash-alice" not in text and "session-alice" not in text
    assert summary.rows == 12


@pytest.mark.parametrize("fmt", ["dpo", "kto", "reward", "lmsys"])
@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_every_format_loads_with_datasets_and_passes_trls_format_helpers(
    history: History, tmp_path: Path, demo_models: DemoModels, fmt: str, suffix: str
) -> None:
    from transformers import AutoTokenizer

    _, out = run(history, fmt, tmp_path, suffix)
    data = load_dataset("json" if suffix == ".jsonl" else "parquet", data_files=str(out), split="train")
    assert data.num_rows == len(rows(out)) if suffix == ".jsonl" else data.num_rows > 0
    if fmt == "lmsys":
        assert data.column_names == LMSYS_KEYS
        return
    tokenizer = AutoTokenizer.from_pretrained(demo_models.base, local_files_only=True)
    for example in data:
        assert is_conversational(example)
        rendered = maybe_apply_chat_template(example, tokenizer)
        for key in {"dpo": ("prompt", "chosen", "rejected"), "kto": ("prompt", "completion"), "reward": ("chosen",)}[
            fmt
        ]:
            assert isinstance(rendered[key], str) and rendered[key]
    if fmt == "dpo":
        # TRL renders the prompt with the generation prompt and the answer as its continuation
        first = maybe_apply_chat_template(data[0], tokenizer)
        assert first["prompt"].endswith("<|im_start|>assistant\n") and first["chosen"].startswith("Paris.")


def test_parquet_and_jsonl_hold_the_same_rows(history: History, tmp_path: Path) -> None:
    _, jsonl = run(history, "dpo", tmp_path)
    _, parquet = run(history, "dpo", tmp_path, ".parquet")
    import pyarrow.parquet as pq

    assert pq.read_table(parquet).to_pylist() == rows(jsonl)


def test_exports_are_deterministic(history: History, tmp_path: Path) -> None:
    _, first = run(history, "kto", tmp_path)
    again = tmp_path / "again.jsonl"
    export(history.engine, "kto", again, VoteFilter(include_self_play=True), judges=JUDGES)
    assert first.read_bytes() == again.read_bytes()


def test_bad_requests_are_refused_with_sentences_and_leave_no_file(history: History, tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    with pytest.raises(ExportError, match=r"name it \.jsonl or \.parquet"):
        export(history.engine, "dpo", folder / "out.csv", VoteFilter(include_self_play=True), judges=JUDGES)
    with pytest.raises(ExportError, match="JSON Lines only"):
        export(history.engine, "raw", folder / "raw.parquet", VoteFilter(include_self_play=True), judges=JUDGES)
    with pytest.raises(ExportError, match="does not exist"):
        export(history.engine, "dpo", folder / "missing" / "x.jsonl", VoteFilter(include_self_play=True), judges=JUDGES)
    with pytest.raises(ExportError, match="Unknown format"):
        export(history.engine, "csv", folder / "x.jsonl", VoteFilter(include_self_play=True), judges=JUDGES)
    assert list(folder.iterdir()) == []


def test_a_failed_export_leaves_the_previous_file_untouched(history: History, tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    out = folder / "dpo.jsonl"
    out.write_text("previous export\n", encoding="utf-8")

    def broken(_n: int) -> None:
        raise RuntimeError("disk went away")

    with pytest.raises(RuntimeError):
        export(history.engine, "dpo", out, VoteFilter(include_self_play=True), judges=JUDGES, progress=broken)
    assert out.read_text(encoding="utf-8") == "previous export\n"
    assert [p.name for p in folder.iterdir()] == ["dpo.jsonl"]


def test_prefetch_hands_on_errors_and_stops_when_the_reader_leaves() -> None:
    import threading

    from arena.store.export_source import prefetched

    def failing() -> Iterator[int]:
        yield 1
        raise RuntimeError("the database went away")

    got: list[int] = []
    with pytest.raises(RuntimeError, match="went away"):
        got.extend(prefetched(failing()))
    assert got == [1]

    produced: list[int] = []

    def endless() -> Iterator[int]:
        n = 0
        while True:
            produced.append(n)
            yield n
            n += 1

    stream = prefetched(endless(), depth=2)
    assert [next(stream) for _ in range(3)] == [0, 1, 2]
    stream.close()
    assert not any(t.name == "export-prefetch" and t.is_alive() for t in threading.enumerate())
    assert len(produced) <= 3 + 2 + 1  # read ahead by at most the queue's depth, then stopped


def test_a_failed_chat_turn_stays_out_of_later_prompts(history: History, tmp_path: Path) -> None:
    from arena.domain import Reply, ReplyStatus, Voter
    from tests.arena.export.conftest import ALICE, ok

    repo = history.repo
    repo.create_chat(conversation_id="chat-3", model="vigogne-7b", voter=ALICE)
    failed = Reply(text="partial", status=ReplyStatus.ERROR, error="The model is busy.")
    repo.record_chat_turn(conversation_id="chat-3", turn_index=0, user_text="lost question", reply=failed,
                          model="vigogne-7b", params={})  # fmt: skip
    answer = repo.record_chat_turn(conversation_id="chat-3", turn_index=1, user_text="second question",
                                   reply=ok("second answer"), model="vigogne-7b", params={})  # fmt: skip
    repo.record_feedback(
        message_id=answer, rating="up", tags=[], comment=None, voter=Voter(session_id=ALICE.session_id)
    )
    _, out = run(history, "kto", tmp_path)
    [row] = [r for r in rows(out) if r["id"] == "chat-3"]
    assert row["prompt"] == [{"role": "user", "content": "second question"}]
    assert row["completion"] == [{"role": "assistant", "content": "second answer"}]


def test_unknown_language_and_case_insensitive_language_filters(history: History, tmp_path: Path) -> None:
    from tests.arena.export.conftest import battle

    battle(history, "bu" + "0" * 30, [("???", "Yes.", "No.", Outcome.A)], language="unknown")
    battle(history, "bn" + "0" * 30, [("!!!", "Yes.", "No.", Outcome.B)], language=None)

    def questions(*languages: str) -> list[str]:
        _, out = run(history, "lmsys", tmp_path, languages=languages)
        return [r["conversation_a"][-2]["content"] for r in rows(out)]

    assert questions("unknown") == questions("Unknown") == ["???", "!!!"]
    assert questions("chinese") == ["你好"]


def test_a_vote_both_named_and_leaked_is_counted_once_as_left_out(history: History, tmp_path: Path) -> None:
    from tests.arena.export.conftest import battle

    battle(history, "bl" + "0" * 30, [("Who?", "I am Vigogne.", "No.", Outcome.A)], mode=BattleMode.NAMED, leak=True)
    summary, _ = run(history, "dpo", tmp_path)
    assert summary.excluded == {
        "cast with the names visible (add --include-named)": 2,
        "an answer revealed a model's identity (add --include-leaks)": 1,
    }


def test_the_summary_counts_in_words_and_leaves_out_zero_counts(history: History, tmp_path: Path) -> None:
    summary, out = run(history, "lmsys", tmp_path, include_named=True, include_leaks=True)
    # every vote is a record here: nothing skipped, nothing left out, so one line only
    assert summary.lines() == [f"Wrote 10 lmsys rows to {out} from 10 records in {summary.seconds:.1f} s."]
    summary, _ = run(history, "dpo", tmp_path, since=date(2026, 3, 3))
    # no duplicate and nothing left out: no zero count is kept (the dataset card lists every key it finds)
    assert dict(summary.skipped) == {}
    assert summary.lines(with_path=False) == [f"Wrote 3 dpo rows from 3 records in {summary.seconds:.1f} s."]

    one = Summary(format="dpo", path=tmp_path / "x.jsonl", rows=1, read=1)
    one.skipped = Counter({Skip.TIE: 1, Skip.BOTH_BAD: 2, Skip.DUPLICATE: 0, Skip.EMPTY: 1})
    one.excluded = {"cast with the names visible (add --include-named)": 0, "an answer revealed a model": 1}
    assert one.lines(with_path=False) == [
        "Wrote 1 dpo row from 1 record in 0.0 s.",
        "1 vote with an empty answer skipped.",
        "2 both-bad votes skipped (not a preference).",
        "1 tie skipped (not a preference).",
        "1 vote left out: an answer revealed a model.",
    ]
    many = Summary(format="kto", path=tmp_path / "x.jsonl", rows=1200, read=0, skipped=Counter({Skip.TIE: 3}))
    assert many.lines(with_path=False) == [
        "Wrote 1,200 kto rows from 0 records in 0.0 s.",
        "3 ties skipped (not a preference).",
    ]
    # every reason an export can give is worded for the summary
    reasons = {v for k, v in vars(Skip).items() if not k.startswith("_") and isinstance(v, str)}
    assert reasons == set(SKIPPED)


def test_exports_collect_garbage_rarely_and_put_the_collector_back_after_the_last_one() -> None:
    import gc

    from arena.export.run import _RareCollections

    before = gc.get_threshold()
    first, second = _RareCollections(), _RareCollections()
    with first:
        raised = gc.get_threshold()
        assert raised[0] >= 70_000 and raised[1:] == before[1:]
        with second:  # a second export overlapping the first
            assert gc.get_threshold() == raised
        assert gc.get_threshold() == raised  # the first is still running
    assert gc.get_threshold() == before
