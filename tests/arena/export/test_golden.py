"""Golden outputs: every export format, every data shape, both file types, byte for byte as first recorded.

The files under `golden/` were written by the export code as it stood before the read path was rebuilt for speed
(`CORRAL_WRITE_GOLDEN=1 pytest tests/arena/export/test_golden.py` rewrites them; only do that for a deliberate
change of output, and say so in the commit). JSON Lines files are compared as bytes; Parquet files by their schema
and rows, which is what a reader sees (the file bytes carry the pyarrow version). The summary of each export is
golden too: rows written, records read, skips by reason, votes left out by reason, models, languages, date range.
Runs on SQLite and on PostgreSQL: both must give the same bytes.
"""

from __future__ import annotations

import json
import os
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from arena.domain import BattleMode, Outcome, Reply, ReplyStatus, Side, VoteFilter
from arena.export.formats import FORMATS
from arena.export.run import Summary, export, leaderboard_strengths
from arena.store.engine import make_engine
from arena.store.repository import Repository
from tests.arena.export.conftest import ALICE, BOB, JUDGES, Clock, History, battle, ok

GOLDEN = Path(__file__).with_name("golden")
WRITE = os.environ.get("CORRAL_WRITE_GOLDEN") == "1"

# the filter sets every format is exported with: name → VoteFilter keywords
FILTERS: dict[str, dict[str, Any]] = {
    "default": {},
    "self-play": {"include_self_play": True},
    "everything": {"include_named": True, "include_leaks": True, "include_self_play": True},
    "french-deep": {"languages": ["French"], "min_turns": 2, "include_self_play": True},
    "models-days": {
        "models": ["vigogne-7b", "alpaca-zh"],
        "since": date(2026, 3, 1),
        "until": date(2026, 3, 3),
        "include_named": True,
    },
    "unknown-language": {"languages": ["unknown"], "include_leaks": True},
    "multi-turn": {"category": "multi_turn", "include_named": True},
}


def _regenerate(h: History, battle_id: str, turn: int, a: str, b: str) -> None:
    """Replace both answers of a round (the old ones stay stored, superseded)."""
    h.repo.record_battle_turn(
        battle_id=battle_id,
        turn_index=turn,
        user_text="",
        replies={Side.A: ok(a), Side.B: ok(b)},
        params={Side.A: {"seed": 3}, Side.B: {"seed": 4}},
        language="French",
        regenerated=True,
    )


@pytest.fixture
def shapes(history: History) -> History:
    """The export tests' history plus the shapes it lacks: three rounds, regenerated answers, empty and failed
    answers, slight preferences, a named and leaked vote, no detected language, a chat with a failed turn."""
    h = history
    h.clock.now += timedelta(hours=1)
    three = "c1" + "0" * 30  # three rounds; the middle one regenerated and unvoted, the last voted
    battle(h, three, [("Un.", "A1.", "B1.", Outcome.A_SLIGHTLY), ("Deux.", "A2.", "B2.", None)])
    _regenerate(h, three, 1, "A2 bis.", "B2 bis.")
    h.repo.record_battle_turn(
        battle_id=three,
        turn_index=2,
        user_text="Trois.",
        replies={Side.A: ok("A3."), Side.B: ok("B3.")},
        params={Side.A: {"seed": 1}, Side.B: {"seed": 2}},
        language="French",
    )
    h.repo.record_vote(
        battle_id=three, turn_index=2, outcome=Outcome.B_SLIGHTLY, anonymous=True, voter=ALICE, language="French"
    )
    battle(h, "c2" + "0" * 30, [("Empty?", "", "Something.", Outcome.B)], language="English")
    battle(h, "c3" + "0" * 30, [("Blank?", "   ", "Something.", Outcome.TIE)], language="English")
    battle(h, "c4" + "0" * 30, [("Both?", "Named and", "leaked.", Outcome.A)], mode=BattleMode.NAMED, leak=True)
    battle(h, "c5" + "0" * 30, [("???", "Hmm.", "Hm.", Outcome.B)], language=None, voter=BOB)
    # a voted round, then a round that failed: the battle closes as errored, the first vote still counts
    failed = "c6" + "0" * 30
    battle(h, failed, [("Premier.", "Oui.", "Non.", Outcome.B)])
    h.repo.record_battle_turn(
        battle_id=failed,
        turn_index=1,
        user_text="Second.",
        replies={Side.A: ok("Half"), Side.B: Reply(text="", status=ReplyStatus.ERROR, error="timeout")},
        params={Side.A: {}, Side.B: {}},
        language="French",
    )
    battle(
        h,
        "c7" + "0" * 30,
        [("Self two?", "Same.", "Same!", Outcome.BOTH_BAD), ("Again?", "One.", "Two.", Outcome.A)],
        models=("belle-7b", "belle-7b"),
        mode=BattleMode.SELF_PLAY,
        language="Chinese",
    )
    # a chat whose first answer failed (taken back), then answered and rated
    h.repo.create_chat(conversation_id="chat-3", model="alpaca-zh", voter=BOB)
    h.repo.record_chat_turn(
        conversation_id="chat-3",
        turn_index=0,
        user_text="Lost question",
        reply=Reply(text="", status=ReplyStatus.ERROR, error="down"),
        model="alpaca-zh",
        params={},
        language="English",
    )
    answer = h.repo.record_chat_turn(
        conversation_id="chat-3",
        turn_index=1,
        user_text="Second try",
        reply=ok("Here it is."),
        model="alpaca-zh",
        params={},
        language="English",
    )
    h.repo.record_feedback(message_id=answer, rating="up", tags=[], comment=None, voter=BOB)
    return h


def _summary(s: Summary) -> dict[str, Any]:
    return {
        "rows": s.rows,
        "read": s.read,
        "skipped": dict(sorted(s.skipped.items())),
        "excluded": s.excluded,
        "models": dict(sorted(s.models.items())),
        "languages": dict(sorted(s.languages.items())),
        "first": None if s.first is None else s.first.isoformat(),
        "last": None if s.last is None else s.last.isoformat(),
        "lines": s.lines(with_path=False)[1:],  # the first line holds the run time
    }


def _parquet_view(path: Path) -> bytes:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    view = {"schema": str(table.schema), "rows": table.to_pylist()}
    return json.dumps(view, ensure_ascii=False, indent=1, default=str).encode() + b"\n"


def _check(name: str, actual: bytes) -> None:
    golden = GOLDEN / name
    if WRITE:
        GOLDEN.mkdir(exist_ok=True)
        golden.write_bytes(actual)
        return
    assert golden.exists(), f"no golden file {name}: write it with CORRAL_WRITE_GOLDEN=1"
    expected = golden.read_bytes()
    if actual != expected:  # show the first differing line, not two megabytes
        pairs = zip(actual.splitlines(), expected.splitlines(), strict=False)
        first = next(((i, a, e) for i, (a, e) in enumerate(pairs) if a != e), None)
        pytest.fail(f"{name} differs from its golden file (first differing line: {first})")


CASES = [(fmt, label) for fmt in FORMATS for label in FILTERS]


@pytest.mark.parametrize(("fmt", "label"), CASES, ids=[f"{fmt}-{label}" for fmt, label in CASES])
def test_every_format_and_filter_writes_its_golden_bytes(shapes: History, tmp_path: Path, fmt: str, label: str) -> None:
    filters = VoteFilter(**FILTERS[label])
    spec = FORMATS[fmt]
    suffixes = [".jsonl", ".parquet"] if spec.schema is not None else [".jsonl"]
    summaries = []
    for suffix in suffixes:
        out = tmp_path / f"{fmt}{suffix}"
        summary = export(shapes.engine, fmt, out, filters, judges=JUDGES)
        summaries.append(_summary(summary))
        body = out.read_bytes() if suffix == ".jsonl" else _parquet_view(out)
        _check(f"{fmt}.{label}{suffix}" + (".json" if suffix == ".parquet" else ""), body)
    assert all(s == summaries[0] for s in summaries), "JSON Lines and Parquet exports must count the same"
    _check(f"{fmt}.{label}.summary.json", json.dumps(summaries[0], ensure_ascii=False, indent=1).encode() + b"\n")


def test_the_margin_column_writes_its_golden_bytes(shapes: History, tmp_path: Path) -> None:
    filters = VoteFilter(include_named=True)
    strengths = leaderboard_strengths(shapes.engine, filters)
    out = tmp_path / "reward.jsonl"
    export(shapes.engine, "reward", out, filters, judges=JUDGES, strengths=strengths)
    _check("reward.margin.jsonl", out.read_bytes())


def test_batch_boundaries_change_nothing(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Votes read seven at a time, so that batches cut through battles, give the bytes of one big batch."""
    import arena.store.export_source

    monkeypatch.setattr(arena.store.export_source, "BATCH", 7)
    clock = Clock()
    engine = make_engine(db_url)
    h = History(engine, Repository(engine, clock=clock), clock)
    for n in range(30):
        rounds: list[tuple[str, str, str, Outcome | None]] = [
            (f"Q{n}.{t}", f"A{n}.{t}", f"B{n}.{t}", Outcome.A if (n + t) % 3 else Outcome.B) for t in range(3)
        ]
        battle(h, f"d{n:031x}", rounds)
    out = tmp_path / "dpo.jsonl"
    export(engine, "dpo", out, VoteFilter(), judges=JUDGES)
    _check("dpo.many-battles.jsonl", out.read_bytes())
