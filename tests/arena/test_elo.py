"""Online Elo as a rating method: the replay is the vote-by-vote reference, and it agrees with Bradley–Terry."""

from __future__ import annotations

import numpy as np
import pytest

from arena.domain import Outcome
from arena.elo import OnlineElo
from arena.rating_methods import BradleyTerry
from arena.ratings import online_elo, outcome_counts, score_of_a
from tests.arena.test_leaderboard import TRUE, simulated


def test_elo_replay_in_the_given_order_is_the_vote_by_vote_elo() -> None:
    votes = [("x", "y", Outcome.A)] * 5 + [("y", "z", Outcome.TIE)] * 3 + [("x", "z", Outcome.B)] * 4
    reference, _ = online_elo(votes, k=4.0)
    names = ["x", "y", "z"]
    a = np.array([names.index(v[0]) for v in votes])
    b = np.array([names.index(v[1]) for v in votes])
    score = np.array([score_of_a(v[2]) for v in votes])
    replayed = OnlineElo().replay((a, b, score, np.ones(len(votes))), np.arange(len(votes))[None, :], len(names))[0]
    assert replayed + 1000.0 == pytest.approx([reference[n] for n in names])


def test_elo_and_bradley_terry_agree_on_the_order_and_roughly_on_the_gaps() -> None:
    counts = outcome_counts(simulated(3000))
    names = sorted(TRUE)
    rng = np.random.default_rng(1)
    bt, elo = BradleyTerry().fit(counts, names, rng), OnlineElo().fit(counts, names, rng)
    assert np.argsort(bt).tolist() == np.argsort(elo).tolist()
    assert np.max(np.abs((bt - bt.mean()) - (elo - elo.mean()))) < 0.6  # nats: K=4 Elo lags, but not by much
