"""Rating methods: the registry, each method's fit and bootstrap, Elo against the vote-by-vote reference."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from arena.config import ConfigError, load_config
from arena.domain import Outcome, Side, Voter
from arena.leaderboard import build_leaderboard
from arena.rating_methods import RATING_METHODS, rating_method
from arena.store.engine import make_engine
from arena.store.repository import Repository
from tests.arena.store.test_repository import ok
from tests.arena.test_leaderboard import simulated
from tests.support.helpers import ROOT


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


def test_the_config_names_a_known_method(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    base = "models:\n  - {name: x, backend: tgi, endpoints: ['http://127.0.0.1:1'], template: chatml}\n"
    config.write_text(base + "arena: {rating_method: elo}\n", encoding="utf-8")
    assert load_config(config).arena.rating_method == "elo"
    config.write_text(base + "arena: {rating_method: glicko}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"arena\.rating_method: Value error, unknown rating method 'glicko'"):
        load_config(config)
