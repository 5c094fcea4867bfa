"""Rating methods: the registry, each method's fit and bootstrap, Elo against the vote-by-vote reference."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from arena.domain import Outcome, Side, Voter
from arena.elo import OnlineElo
from arena.leaderboard import build_leaderboard
from arena.rating_methods import RATING_METHODS, BradleyTerry, rating_method
from arena.ratings import online_elo, outcome_counts
from arena.store.engine import make_engine
from arena.store.repository import Repository
from tests.arena.store.test_repository import ok
from tests.arena.test_leaderboard import TRUE, simulated
from tests.helpers import ROOT


def test_unknown_method_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown rating method 'glicko' \\(known: bradley-terry, elo\\)"):
        rating_method("glicko")


@pytest.mark.parametrize("name", list(RATING_METHODS))
def test_every_method_ranks_known_strengths(name: str) -> None:
    method = rating_method(name)
    assert method.name == name and method.summary
    board = build_leaderboard(simulated(4000, tie_rate=0.0), rounds=200, method=method)
    assert [s.model for s in board.standings] == ["strong", "middle", "weak"]
    for s in board.standings:
        assert s.lower is not None and s.upper is not None and s.rating is not None
        assert s.lower <= s.rating <= s.upper


@pytest.mark.parametrize("name", list(RATING_METHODS))
def test_every_method_handles_no_votes(name: str) -> None:
    method = rating_method(name)
    rng = np.random.default_rng(0)
    assert method.fit({}, ["x", "y"], rng).tolist() == [0.0, 0.0]
    assert method.bootstrap({}, ["x", "y"], rounds=3, rng=rng, start=np.zeros(2)).shape == (3, 2)


def test_elo_replay_in_the_given_order_is_the_vote_by_vote_elo() -> None:
    votes = [("x", "y", Outcome.A)] * 5 + [("y", "z", Outcome.TIE)] * 3 + [("x", "z", Outcome.B)] * 4
    reference, _ = online_elo(votes, k=4.0)
    names = ["x", "y", "z"]
    a = np.array([names.index(v[0]) for v in votes])
    b = np.array([names.index(v[1]) for v in votes])
    score = np.array([{Outcome.A: 1.0, Outcome.B: 0.0}.get(v[2], 0.5) for v in votes])
    replayed = OnlineElo().replay(a, b, score, np.arange(len(votes))[None, :], len(names))[0]
    assert replayed + 1000.0 == pytest.approx([reference[n] for n in names])


def test_elo_and_bradley_terry_agree_on_the_order_and_roughly_on_the_gaps() -> None:
    counts = outcome_counts(simulated(3000))
    names = sorted(TRUE)
    rng = np.random.default_rng(1)
    bt, elo = BradleyTerry().fit(counts, names, rng), OnlineElo().fit(counts, names, rng)
    assert np.argsort(bt).tolist() == np.argsort(elo).tolist()
    assert np.max(np.abs((bt - bt.mean()) - (elo - elo.mean()))) < 0.6  # nats: K=4 Elo lags, but not by much


def test_cli_refuses_an_unknown_method() -> None:
    empty = subprocess.run(
        [sys.executable, "-m", "arena", "leaderboard", "--method", "nope", "--db", "sqlite:///x.db"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert empty.returncode == 2 and "invalid choice: 'nope'" in empty.stderr
    assert "elo" in empty.stderr and "bradley-terry" in empty.stderr


def test_leaderboard_json_names_its_method(sqlite_url: str) -> None:
    repo, voter = Repository(make_engine(sqlite_url)), Voter("s")
    for i in range(10):
        battle = f"{i:032x}"
        repo.create_battle(battle_id=battle, models={Side.A: "m1", Side.B: "m2"}, voter=voter)
        replies = {Side.A: ok("a"), Side.B: ok("b")}
        repo.record_battle_turn(
            battle_id=battle, turn_index=0, user_text="q", replies=replies, params={Side.A: {}, Side.B: {}}
        )
        outcome = Outcome.A if i < 8 else Outcome.B
        repo.record_vote(battle_id=battle, turn_index=0, outcome=outcome, anonymous=True, voter=voter)
    out = subprocess.run(
        [sys.executable, "-m", "arena", "leaderboard", "--db", sqlite_url, "--method", "elo", "--format", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    board = json.loads(out.stdout)
    assert board["method"] == "elo" and board["votes"] == 10
    assert [s["model"] for s in board["standings"]] == ["m1", "m2"]
