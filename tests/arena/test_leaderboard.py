"""The leaderboard: bootstrap intervals, the rank rule, matrices, zero-vote models, Elo, the CLI and the DB path."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import numpy as np
import pytest

from arena.contextual_bt import floor_thin_records, thin_records
from arena.domain import Outcome, Side, VoteFilter, Voter
from arena.elo import OnlineElo
from arena.leaderboard import LeaderboardService, build_leaderboard
from arena.ratings import (
    arena_ranks,
    bootstrap_log_strengths,
    fit_log_strengths,
    online_elo,
    win_matrix,
)
from arena.store.repository import Repository
from tests.arena.store.test_repository import ok
from tests.support.battles import store_round
from tests.support.helpers import ROOT

TRUE = {"strong": 1200.0, "middle": 1000.0, "weak": 850.0}


def simulated(n: int, seed: int = 1, tie_rate: float = 0.1) -> list[tuple[str, str, Outcome, int]]:
    rng = random.Random(seed)
    out: dict[tuple[str, str, Outcome], int] = {}
    names = list(TRUE)
    for _ in range(n):
        a, b = rng.sample(names, 2)
        p = 1 / (1 + 10 ** ((TRUE[b] - TRUE[a]) / 400))
        r = rng.random()
        outcome = Outcome.TIE if r < tie_rate else (Outcome.A if rng.random() < p else Outcome.B)
        out[(a, b, outcome)] = out.get((a, b, outcome), 0) + 1
    return [(a, b, o, n) for (a, b, o), n in out.items()]


def test_recovers_known_strengths_and_ranks_them() -> None:
    board = build_leaderboard(simulated(6000, tie_rate=0.0), rounds=300)  # random ties would pull ratings together
    assert [s.model for s in board.standings] == ["strong", "middle", "weak"]
    assert [s.rank for s in board.standings] == [1, 2, 3]
    rating = {s.model: s.rating for s in board.standings}
    assert abs((rating["strong"] or 0) - (rating["weak"] or 0) - 350) < 40
    for s in board.standings:
        assert s.lower is not None and s.upper is not None and s.rating is not None
        assert s.lower < s.rating < s.upper


def test_intervals_shrink_with_more_votes() -> None:
    small = build_leaderboard(simulated(300), rounds=300)
    large = build_leaderboard(simulated(30000), rounds=300)

    def width(board: object) -> float:
        return float(np.mean([(s.upper or 0) - (s.lower or 0) for s in board.standings]))  # type: ignore[attr-defined]

    assert width(large) < width(small) / 5


def test_sandwich_intervals_match_the_bootstrap_and_rank_the_same() -> None:
    outcomes = simulated(20000, tie_rate=0.0)
    boot = build_leaderboard(outcomes, rounds=2000)
    sandwich = build_leaderboard(outcomes, rounds=2000, intervals="sandwich")
    assert sandwich.intervals == "sandwich" and boot.intervals == "bootstrap"
    assert sandwich.intervals_taken == "sandwich intervals" and boot.intervals_taken == "2000 bootstrap rounds"
    assert [s.model for s in sandwich.standings] == [s.model for s in boot.standings]
    assert [s.rank for s in sandwich.standings] == [s.rank for s in boot.standings] == [1, 2, 3]
    for b, w in zip(boot.standings, sandwich.standings, strict=True):
        assert b.rating == pytest.approx(w.rating)
        assert w.lower is not None and w.upper is not None and w.rating is not None
        assert w.upper - w.rating == pytest.approx(w.rating - w.lower)  # symmetric, on the rating scale
        assert (w.upper - w.lower) / ((b.upper or 0) - (b.lower or 0)) == pytest.approx(1.0, abs=0.08)


def test_sandwich_intervals_need_a_likelihood_and_unknown_kinds_are_refused() -> None:
    with pytest.raises(ValueError, match="elo rating method has no sandwich intervals"):
        build_leaderboard(simulated(500), rounds=20, method=OnlineElo(), intervals="sandwich")
    with pytest.raises(ValueError, match="unknown intervals 'jackknife'"):
        build_leaderboard(simulated(500), rounds=20, intervals="jackknife")


def test_batched_bootstrap_equals_fitting_each_resample_alone() -> None:
    # keys already in the bootstrap's own cell order (sorted names, i < j), so the same draws can be replayed
    counts = {
        ("middle", "strong"): (3.0, 9.0, 1.0),
        ("middle", "weak"): (12.0, 9.0, 2.0),
        ("strong", "weak"): (30.0, 5.0, 4.0),
    }
    models = sorted(TRUE)
    batched = bootstrap_log_strengths(counts, models, rounds=20, rng=np.random.default_rng(7))
    # the same multinomial draws, fitted one by one with the line-searched single fit
    rng = np.random.default_rng(7)
    cells = np.array([counts[k] for k in counts]).ravel()
    draws = rng.multinomial(int(cells.sum()), cells / cells.sum(), size=20).reshape(20, 3, 3)
    for r in range(20):
        resampled = {k: tuple(map(float, draws[r, n])) for n, k in enumerate(counts)}
        alone = fit_log_strengths(win_matrix(resampled, models))  # type: ignore[arg-type]
        np.testing.assert_allclose(batched[r] - batched[r].mean(), alone - alone.mean(), atol=1e-6)


def test_rank_rule_counts_models_better_beyond_doubt() -> None:
    lower = np.array([1100.0, 1050.0, 900.0, 890.0])
    upper = np.array([1200.0, 1150.0, 1000.0, 960.0])
    assert arena_ranks(lower, upper) == [1, 1, 3, 3]


def test_zero_vote_model_two_models_and_a_model_that_never_lost() -> None:
    outcomes = [("winner", "loser", Outcome.A, 25), ("winner", "loser", Outcome.BOTH_BAD, 3)]
    board = build_leaderboard(outcomes, models=["winner", "loser", "newcomer"], rounds=200)
    rated = {s.model: s for s in board.standings}
    assert rated["newcomer"].votes == 0 and rated["newcomer"].rating is None and rated["newcomer"].rank is None
    assert board.standings[-1].model == "newcomer"
    winner = rated["winner"]
    assert winner.rating is not None and winner.upper is not None and np.isfinite(winner.upper)
    assert winner.rank == 1 and rated["loser"].rank == 2
    assert board.win_rates == [[None, pytest.approx(26.5 / 28)], [pytest.approx(1.5 / 28), None]]
    assert board.battles == [[0, 28], [28, 0]]


@pytest.mark.parametrize(("method", "intervals"), [(None, "bootstrap"), (None, "sandwich"), (OnlineElo(), "bootstrap")])
def test_one_vote_separates_nobody(method: OnlineElo | None, intervals: str) -> None:
    # resampling one vote always gives that vote, and a model that won every vote leaves no residual: without the
    # model-based floor both kinds of interval collapse to a point and one vote would rank the two models apart
    board = build_leaderboard([("x", "y", Outcome.A, 1)], rounds=50, method=method, intervals=intervals)
    assert [s.rank for s in board.standings] == [1, 1]
    assert all(s.upper is not None and s.lower is not None and s.upper - s.lower > 400 for s in board.standings)


def test_the_floor_widens_thin_records_only() -> None:
    point, lower, upper = np.array([10.0, 0.0]), np.array([8.0, -2.0]), np.array([12.0, 2.0])
    thin = thin_records(np.array([29.0, 30.0, 40.0, 40.0]), np.array([10.0, 15.0, 40.0, 0.0]))
    assert thin.tolist() == [True, False, True, True]  # few votes; enough; never lost; never won
    low, high = floor_thin_records(point, lower, upper, np.array([True, False]), np.array([5.0, 5.0]))
    assert low.tolist() == [5.0, -2.0] and high.tolist() == [15.0, 2.0]
    wide, _ = floor_thin_records(point, np.array([0.0, -9.0]), upper, np.array([True, True]), np.array([5.0, 5.0]))
    assert wide.tolist() == [0.0, -9.0]  # never narrower than the method's own
    plain = build_leaderboard([("x", "y", Outcome.A, 60), ("x", "y", Outcome.B, 40)], rounds=200, intervals="sandwich")
    x = plain.standings[0]
    assert x.upper is not None and x.rating is not None and x.upper - x.rating < 60  # the sandwich's own width


@pytest.mark.parametrize("intervals", ["bootstrap", "sandwich"])
def test_a_model_that_never_lost_keeps_a_real_interval_at_any_count(intervals: str) -> None:
    # 30 or 100 wins and no loss: every resample is the same record and no residual is left
    for n in (29, 30, 100):
        board = build_leaderboard([("x", "y", Outcome.A, n)], rounds=50, intervals=intervals)
        x = board.standings[0]
        assert x.upper is not None and x.lower is not None and x.upper - x.lower > 100, (n, x)


def test_ties_and_both_bad_count_half() -> None:
    tied = build_leaderboard([("x", "y", Outcome.TIE, 10), ("x", "y", Outcome.BOTH_BAD, 10)], rounds=100)
    assert [round(s.rating or 0) for s in tied.standings] == [1000, 1000]
    assert all(s.win_rate == pytest.approx(0.5) for s in tied.standings)


def test_empty_leaderboard() -> None:
    board = build_leaderboard([], models=["a", "b"], rounds=50)
    assert [s.votes for s in board.standings] == [0, 0] and board.models == [] and board.votes == 0


def test_online_elo_history() -> None:
    votes = [("a", "b", "a")] * 30 + [("a", "b", "tie")] * 10
    final, history = online_elo(votes, k=8, every=10)
    assert final["a"] > 1000 > final["b"] and len(history) == 4
    assert history[0][0] == 10 and history[-1][1] == final


def test_service_reads_counts_from_the_database_with_filters(repo: Repository) -> None:
    voter = Voter("s")
    for i, (language, outcome) in enumerate([("French", Outcome.A)] * 6 + [("English", Outcome.B)] * 4):
        battle = f"{i:032x}"
        repo.create_battle(battle_id=battle, models={Side.A: "m1", Side.B: "m2"}, voter=voter)
        store_round(repo, battle, (ok("a"), ok("b")), language=language)
        repo.record_vote(
            battle_id=battle, turn_index=0, outcome=outcome, anonymous=True, voter=voter, language=language
        )
    service = LeaderboardService(repo, models=["m1", "m2", "m3"])
    everything = service.compute(rounds=100)
    french = service.compute(VoteFilter(languages=["French"]), rounds=100)
    assert everything.votes == 10 and french.votes == 6
    assert french.standings[0].model == "m1" and french.standings[0].win_rate == 1.0
    assert service.languages() == ["French", "English"]
    assert everything.db_seconds >= 0 and everything.fit_seconds > 0


def test_cli_formats(db_url: str, repo: Repository) -> None:
    voter = Voter("s")
    repo.create_battle(battle_id="c" * 32, models={Side.A: "m1", Side.B: "m2"}, voter=voter)
    repo.record_battle_turn(
        battle_id="c" * 32,
        turn_index=0,
        user_text="q",
        replies={Side.A: ok("a"), Side.B: ok("b")},
        params={Side.A: {}, Side.B: {}},
    )
    repo.record_vote(
        battle_id="c" * 32, turn_index=0, outcome=Outcome.A, anonymous=True, voter=voter, language="French"
    )

    def run(*extra: str) -> str:
        cmd = [sys.executable, "-m", "arena", "leaderboard", "--db", db_url, "--rounds", "50", *extra]
        result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return result.stdout

    data = json.loads(run("--format", "json", "--language", "fr"))
    assert data["votes"] == 1 and [s["model"] for s in data["standings"]] == ["m1", "m2"]
    assert run("--format", "csv").splitlines()[0] == "rank,model,rating,lower,upper,votes,win_rate"
    assert "m1" in run()
    coded = json.loads(run("--format", "json", "--category", "coding"))
    assert coded["votes"] == 0 and coded["category"] == "coding"
    cmd = [sys.executable, "-m", "arena", "leaderboard", "--db", db_url, "--rounds", "50", "--language", "fr"]
    said = subprocess.run([*cmd, "--category", "math"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert "0 votes on math questions in French," in said.stderr
    assert json.loads(run("--format", "json", "--language", "English"))["votes"] == 0
    styled = json.loads(run("--format", "json", "--style"))["style_controlled"]
    assert styled["votes"] == 1 and [s["model"] for s in styled["standings"]] == ["m1", "m2"]
    assert [e["feature"] for e in styled["effects"]] == ["length", "headers", "lists", "bold"]
    assert "With answer length and markdown held equal (1 vote with style)" in run("--style")
    sandwich = json.loads(run("--format", "json", "--intervals", "sandwich"))
    assert sandwich["intervals"] == "sandwich" and [s["model"] for s in sandwich["standings"]] == ["m1", "m2"]
    refused = subprocess.run(
        [sys.executable, "-m", "arena", "leaderboard", "--db", db_url, "--method", "elo", "--intervals", "sandwich"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 2 and "bootstrap intervals only" in refused.stderr
    assert sandwich["rounds"] is None  # no resampling took place
    as_csv = [sys.executable, "-m", "arena", "leaderboard", "--db", db_url, "--style", "--format", "csv"]
    refused = subprocess.run(as_csv, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "table and json formats, not csv" in refused.stderr


def test_cli_refuses_a_missing_database(tmp_path: object) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "arena", "leaderboard", "--db", f"sqlite:///{tmp_path}/nope.db"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and result.stderr.strip().startswith("arena: no database at")
