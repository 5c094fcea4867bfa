"""The Leaderboard and Export tabs' presenters over real services and a SQLite file: no browser."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from arena.domain import Outcome, Side, Voter
from arena.elo import OnlineElo
from arena.export.formats import Judges
from arena.export.service import ExportService
from arena.judging import Judgement, Verdict
from arena.leaderboard import LeaderboardService
from arena.store.repository import Repository
from arena.ui.export import ExportForm, ExportPresenter
from arena.ui.leaderboard import ALL, ALL_QUESTIONS, LeaderboardPresenter
from tests.arena.store.test_repository import ok
from tests.support.battles import store_round

VOTER = Voter("board-1")
TOKEN = "admin-token-0123456789"


def votes(repo: Repository) -> None:
    """Three French votes for x over y, one English vote for y."""
    for n, (outcome, language) in enumerate([(Outcome.A, "French")] * 3 + [(Outcome.B, "English")]):
        battle = f"{n:032x}"
        repo.create_battle(battle_id=battle, models={Side.A: "x", Side.B: "y"}, voter=VOTER)
        store_round(repo, battle, (ok("a"), ok("b")), language=language)
        repo.record_vote(
            battle_id=battle, turn_index=0, outcome=outcome, anonymous=True, voter=VOTER, language=language
        )


def test_the_leaderboard_per_language_and_its_method(repo: Repository) -> None:
    votes(repo)
    presenter = LeaderboardPresenter(LeaderboardService(repo, models=["x", "y", "z"]), rounds=50)
    assert presenter.explain().startswith("Bradley–Terry maximum likelihood")
    everything = presenter.view(ALL)
    assert everything.languages == [ALL, "French", "English"] and everything.language == ALL
    assert [row[1] for row in everything.rows] == ["x", "y", "z"] and "**4** votes" in everything.note
    english = presenter.view("English")
    assert english.language == "English" and [row[1] for row in english.rows][:2] == ["y", "x"]
    assert presenter.view("Klingon").language == ALL  # a language with no votes: the board of none, shown as all
    assert "from **1** vote in" in english.note
    assert "95% intervals from 50 bootstrap resamples of the votes." in presenter.explain()
    assert "(50 bootstrap rounds)" in everything.note
    elo = LeaderboardPresenter(LeaderboardService(repo, method=OnlineElo()), rounds=20)
    assert elo.explain().startswith("Online Elo")
    style_rows, style_note = presenter.style(ALL)
    assert [row[1] for row in style_rows] == ["x", "y"] and style_note.startswith("From 4 votes")
    assert "No two answers differed in length: its effect is not measured." in style_note
    assert presenter.style("Klingon") == (style_rows, style_note)  # a language with no votes: all, as the board
    audited = presenter.audit(ALL)
    assert audited.startswith("Audit of 4 votes from 1 voter.")
    assert "- x and y are not separated" in audited and "<summary>When each check speaks</summary>" in audited
    assert presenter.audit("English").startswith("Audit of 1 vote from 1 voter.")
    sandwich = LeaderboardPresenter(LeaderboardService(repo, models=["x", "y"], intervals="sandwich"), rounds=50)
    assert "95% intervals from the sandwich (robust) covariance" in sandwich.explain()
    assert "(sandwich intervals)" in sandwich.view(ALL).note


def test_the_leaderboard_per_category_and_with_either_kind_of_interval(repo: Repository) -> None:
    votes(repo)  # four questions of no category
    repo.create_battle(battle_id="c" * 32, models={Side.A: "x", Side.B: "z"}, voter=VOTER)
    store_round(repo, "c" * 32, (ok("a"), ok("b")), text="Write a haiku about rain")
    repo.record_vote(battle_id="c" * 32, turn_index=0, outcome=Outcome.B, anonymous=True, voter=VOTER)
    presenter = LeaderboardPresenter(LeaderboardService(repo, models=["x", "y", "z"]), rounds=50)
    assert presenter.interval_choices == [("Bootstrap", "bootstrap"), ("Sandwich (analytic)", "sandwich")]
    creative = presenter.view(ALL, "Creative writing")
    assert [row[1] for row in creative.rows][:2] == ["z", "x"] and "from **1** vote on creative writing requests" in (
        creative.note
    )
    assert "**5** votes in" in presenter.view(ALL, ALL_QUESTIONS).note
    assert "**5** votes in" in presenter.view(ALL, "Knitting").note  # an unknown category: every question
    assert "**0** votes on math questions" in presenter.view(ALL, "Math").note
    assert "(sandwich intervals)" in presenter.view(ALL, ALL_QUESTIONS, "sandwich").note
    assert "(50 bootstrap rounds)" in presenter.view(ALL, ALL_QUESTIONS, "jackknife").note  # unknown: configured
    _, note = presenter.style(ALL, "Creative writing")
    assert note.startswith("From 1 vote,")
    assert presenter.audit(ALL, "Creative writing").startswith("Audit of 1 vote from 1 voter.")
    elo = LeaderboardPresenter(LeaderboardService(repo, method=OnlineElo()), rounds=20)
    assert elo.interval_choices == [("Bootstrap", "bootstrap")]  # Elo has no likelihood: no sandwich
    assert "(20 bootstrap rounds)" in elo.view(ALL, ALL_QUESTIONS, "sandwich").note


def test_ai_judges_have_their_own_board_and_an_agreement_panel(repo: Repository) -> None:
    votes(repo)  # people: three French votes for x, one English for y
    presenter = LeaderboardPresenter(LeaderboardService(repo, models=["x", "y"]), rounds=50)
    assert presenter.voter_choices() == ["People"]
    assert presenter.judges(ALL).startswith("No AI judge has judged a round yet")
    for n in range(4):
        verdict = Verdict.B  # disagrees with the three French votes, agrees with the English one
        repo.record_judgement(
            battle_id=f"{n:032x}", turn_index=0, judgement=Judgement("tiny", verdict, verdict, None, "", None, 1.0)
        )
    assert presenter.voter_choices() == ["People", "AI judge tiny", "Everyone (people and AI judges)"]
    judged = presenter.view(ALL, ALL_QUESTIONS, None, "AI judge tiny")
    assert judged.note.startswith("**AI judge tiny**: AI votes, not people's.") and "**4** votes" in judged.note
    assert [row[1] for row in judged.rows] == ["y", "x"]
    assert "**8** votes" in presenter.view(ALL, ALL_QUESTIONS, None, "Everyone (people and AI judges)").note
    assert "from **0** votes" in presenter.view(ALL, ALL_QUESTIONS, None, "AI judge nobody-knows").note
    panel = presenter.judges(ALL)
    assert panel.startswith("**tiny**") and "On 4 rounds people also judged, tiny agreed 25%" in panel


def test_an_export_from_the_form_and_its_refusals(repo: Repository, tmp_path: Path) -> None:
    votes(repo)
    service = ExportService(repo.engine, Judges(b"export-ui-key-01234567"), TOKEN, folder=tmp_path)
    presenter = ExportPresenter(service)
    done = asyncio.run(presenter.run(TOKEN, "dpo", ".jsonl", ExportForm(languages="French")))
    assert done.path is not None and done.warning is None
    wrote, duplicates = done.status.splitlines()
    assert wrote.startswith("- Wrote 1 dpo row from 3 records in ") and duplicates == "- 2 duplicate rows skipped."
    assert [json.loads(line)["model_chosen"] for line in Path(done.path).read_text().splitlines()] == ["x"]
    wrong = asyncio.run(presenter.run("nope", "dpo", ".jsonl", ExportForm()))
    assert wrong.path is None and wrong.warning == wrong.status == "That admin token is not right."
    bad_day = asyncio.run(presenter.run(TOKEN, "dpo", ".jsonl", ExportForm(first="yesterday")))
    assert bad_day.path is None and bad_day.warning is not None and "first day" in bad_day.warning
