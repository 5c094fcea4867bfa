"""Exports choose whose votes they hold: people's by default, an AI judge's (RLAIF data, said so) on request; the
LMSYS `judge` field names the judge for its votes and stays an anonymous id for people."""

from __future__ import annotations

import json
from pathlib import Path

from arena.domain import Outcome, Side, VoteFilter, Voter
from arena.export.card import card
from arena.export.formats import Judges
from arena.export.run import export
from arena.judging import Judgement, Verdict
from arena.store.repository import Repository
from tests.arena.store.test_repository import ok
from tests.support.battles import store_round


def test_people_by_default_a_judge_on_request_and_the_card_says_which(repo: Repository, tmp_path: Path) -> None:
    voter = Voter("person-1")
    for n, outcome in enumerate([Outcome.A, Outcome.B]):
        battle = f"{n:032x}"
        repo.create_battle(battle_id=battle, models={Side.A: "x", Side.B: "y"}, voter=voter)
        store_round(repo, battle, (ok("answer a"), ok("answer b")), text=f"Question {n}?")
        repo.record_vote(battle_id=battle, turn_index=0, outcome=outcome, anonymous=True, voter=voter)
        verdict = Judgement("tiny", Verdict.A, Verdict.A, Verdict.A, "[[A]]", "[[B]]", 5.0)
        repo.record_judgement(battle_id=battle, turn_index=0, judgement=verdict)
    judges = Judges(b"export-key-0123456789")

    def rows(filters: VoteFilter, name: str) -> list[dict[str, object]]:
        out = tmp_path / f"{name}.jsonl"
        export(repo.engine, "lmsys", out, filters, judges=judges)
        return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]

    people = rows(VoteFilter(), "people")
    assert [r["winner"] for r in people] == ["model_a", "model_b"]
    assert all(str(r["judge"]).startswith("arena_user_") for r in people)
    judged = rows(VoteFilter(voters="judge:tiny"), "judge")
    assert [r["winner"] for r in judged] == ["model_a", "model_a"] and {r["judge"] for r in judged} == {"judge:tiny"}
    assert len(rows(VoteFilter(voters="all"), "all")) == 4
    summary = export(repo.engine, "dpo", tmp_path / "dpo.jsonl", VoteFilter(voters="judge:tiny"), judges=judges)
    text = card(summary, VoteFilter(voters="judge:tiny"), {}, "dpo.jsonl")
    assert "AI feedback (RLAIF)" in text and "the AI judge `judge:tiny`" in text and "rlaif" in text
    plain = card(summary, VoteFilter(), {}, "dpo.jsonl")
    assert "RLAIF" not in plain and "human-feedback" in plain
