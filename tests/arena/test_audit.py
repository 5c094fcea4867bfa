"""The audit on synthetic votes: a clean board fires nothing; each planted defect fires its own line, and only it."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from arena.audit import BARS, audit, cycles, position_bias, separation
from arena.domain import BattleMode, Outcome, Side, VoteFilter, Voter
from arena.store.repository import Repository
from arena.store.retention import PRUNED
from tests.arena.store.test_repository import ok
from tests.support.battles import store_round
from tests.support.helpers import ROOT

STRENGTH = {"m1": 1.5, "m2": 0.9, "m3": 0.3, "m4": -0.3, "m5": -0.9, "m6": -1.5}  # 0.6 nats (~104 points) apart
MODELS = sorted(STRENGTH)

Rows = list[tuple[str, str, str, Outcome, int]]


def votes(
    n: int = 30_000,
    *,
    seed: int = 0,
    side_a: float = 0.0,
    tie_rate: float = 0.1,
    voters: int = 300,
    heavy_share: float = 0.0,
    upset: tuple[str, str, float] | None = None,
    undecided: tuple[str, float] | None = None,
) -> Rows:
    """Votes from a Bradley–Terry world with the given defects planted; aggregated like the repository's rows."""
    rng = np.random.default_rng(seed)
    out: Counter[tuple[str, str, str, Outcome]] = Counter()
    for _ in range(n):
        a, b = rng.choice(MODELS, 2, replace=False)
        voter = "heavy" if rng.random() < heavy_share else f"v{rng.integers(voters)}"
        logit = STRENGTH[a] - STRENGTH[b] + side_a
        if upset is not None and {a, b} == {upset[0], upset[1]}:
            logit = upset[2] if a == upset[0] else -upset[2]  # upset[0] beats upset[1] at these odds, whatever else
        ties = undecided[1] if undecided is not None and undecided[0] in (a, b) else tie_rate
        if rng.random() < ties:
            outcome = Outcome.TIE if rng.random() < 0.5 else Outcome.BOTH_BAD
        else:
            outcome = Outcome.A if rng.random() < 1 / (1 + math.exp(-logit)) else Outcome.B
        out[(voter, str(a), str(b), outcome)] += 1
    return [(v, a, b, o, k) for (v, a, b, o), k in out.items()]


def fired(rows: Rows) -> list[str]:
    return [f.check for f in audit(rows, rounds=300).findings]


def test_a_clean_board_fires_nothing() -> None:
    report = audit(votes(), rounds=300)
    assert report.findings == []
    assert report.models == MODELS and report.voters == 300 and report.votes == 30_000
    assert all(share > 0.9 for share in report.stability.values())


def test_a_planted_position_bias_fires_only_its_line() -> None:
    rows = votes(side_a=0.25)
    assert fired(rows) == ["position"]
    finding = position_bias(rows, MODELS)
    # ties score a half whatever the side, so 10% of ties dilute the planted 56.2% to about 55.6%
    assert finding is not None and "side A gets 55." in finding.sentence and "favour side A (left)" in finding.sentence


def test_a_planted_cycle_fires_only_its_line() -> None:
    # m6, the weakest, beats m4 most of the time, and m4 beats m5 beats m6 as their strengths say
    rows = votes(upset=("m6", "m4", 0.7))
    assert fired(rows) == ["cycles"]
    (finding,) = cycles(rows, MODELS)
    assert finding.sentence.startswith("m4 beats m5") and "m6 beats m4" in finding.sentence


def test_a_planted_heavy_voter_fires_only_its_line() -> None:
    rows = votes(heavy_share=0.3)
    assert fired(rows) == ["voters"]
    (finding,) = [f for f in audit(rows, rounds=300).findings]
    assert "of 301) cast 31% of the votes" in finding.sentence and "no model's rank changes" in finding.sentence


def test_a_model_with_many_ties_fires_only_its_line() -> None:
    rows = votes(undecided=("m3", 0.35))
    assert fired(rows) == ["ties"]
    (finding,) = audit(rows, rounds=300).findings
    assert finding.sentence.startswith("m3: 35% of its votes are ties or both bad")


def test_close_neighbours_fire_separation_with_the_votes_it_would_take() -> None:
    rows = votes(n=600, seed=3)
    lines = separation(rows, MODELS)
    assert lines and all(f.check == "separation" for f in lines)
    assert "more votes between them would separate them" in lines[0].sentence
    assert "separation" in fired(rows)


def test_every_check_states_its_bar_and_too_little_data_fires_nothing() -> None:
    assert set(BARS) == {"position", "ties", "voters", "cycles", "stability", "separation"}
    assert audit([], rounds=10).findings == []
    assert audit([("v", "x", "x", Outcome.A, 5)], rounds=10).models == []  # self-play is left out


@pytest.mark.parametrize("seed", [1, 2])
def test_clean_boards_stay_quiet_with_other_seeds(seed: int) -> None:
    assert fired(votes(seed=seed)) == []


def test_the_repository_reads_votes_per_voter_and_the_cli_reports_them(db_url: str, repo: Repository) -> None:
    plan = [
        ("ip-1", Outcome.A, True),
        ("ip-1", Outcome.TIE, True),
        ("ip-2", Outcome.B, True),
        ("ip-3", Outcome.A, False),
    ]
    for n, (ip, outcome, anonymous) in enumerate(plan):
        battle, voter = f"{n:032x}", Voter(session_id=f"s{n}", ip_hash=ip)
        mode = BattleMode.ANONYMOUS if anonymous else BattleMode.NAMED
        repo.create_battle(battle_id=battle, models={Side.A: "x", Side.B: "y"}, voter=voter, mode=mode)
        store_round(repo, battle, (ok("a"), ok("b")))
        repo.record_vote(battle_id=battle, turn_index=0, outcome=outcome, anonymous=anonymous, voter=voter)
    rows = sorted(repo.voter_outcomes(VoteFilter()))
    assert rows == [
        ("ip-1", "x", "y", Outcome.A, 1),
        ("ip-1", "x", "y", Outcome.TIE, 1),
        ("ip-2", "x", "y", Outcome.B, 1),
    ]
    assert len(repo.voter_outcomes(VoteFilter(include_named=True))) == 4
    pruned = Voter(session_id=PRUNED, ip_hash=None)  # what `prune --action anonymise` leaves on old votes
    repo.create_battle(battle_id="p" * 32, models={Side.A: "x", Side.B: "y"}, voter=pruned)
    store_round(repo, "p" * 32, (ok("a"), ok("b")))
    repo.record_vote(battle_id="p" * 32, turn_index=0, outcome=Outcome.A, anonymous=True, voter=pruned)
    assert ("", "x", "y", Outcome.A, 1) in repo.voter_outcomes(VoteFilter())

    cmd = [sys.executable, "-m", "arena", "audit", "--db", db_url, "--rounds", "50", "--format", "json"]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["votes"], data["voters"], data["models"]) == (4, 2, ["x", "y"])  # the pruned vote has no voter
    assert [f["check"] for f in data["findings"]] == ["separation"]  # three votes separate nothing
    assert set(data["bars"]) == set(BARS)
    text = subprocess.run(cmd[:-2], cwd=ROOT, capture_output=True, text=True, timeout=120).stdout
    assert text.startswith("Audit of 4 votes from 2 voters on 2 models.")
    assert "\n- x and y are not separated" in text and "separation: neighbours in the ranking" in text


def test_a_handful_of_votes_makes_no_bias_cycle_or_voter_claim() -> None:
    circle = [("v1", "x", "y", Outcome.A, 1), ("v2", "y", "z", Outcome.A, 1), ("v3", "z", "x", Outcome.A, 1)]
    assert not {"position", "cycles", "voters"} & set(fired(circle))
    one_sided = [("v1", "x", "y", Outcome.A, 3), ("v2", "y", "x", Outcome.A, 2)]
    assert "position" not in fired(one_sided)


def test_ten_voters_casting_alike_are_not_a_concentration() -> None:
    rows = [(f"v{k}", "x", "y", Outcome.A if k % 2 else Outcome.B, 3) for k in range(10)]
    assert "voters" not in fired(rows)


def test_pruned_votes_count_as_votes_but_not_as_one_heavy_voter() -> None:
    rows = votes()
    pruned = [("", a, b, o, n * 4) for _, a, b, o, n in rows]  # four times as many votes whose voter is gone
    assert fired(rows + pruned) == []
    assert audit(rows + pruned, rounds=50).voters == 300
