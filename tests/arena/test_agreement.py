"""Agreement between AI judges and people on planted data: a judge that copies the people, a random one, one that
follows the position, one that favours its own family."""

from __future__ import annotations

import random

from arena.agreement import Paired, Reading, judge_agreement, kappa, wilson
from arena.domain import Outcome

OUTCOMES = [Outcome.A, Outcome.B, Outcome.TIE, Outcome.BOTH_BAD]


def _people(n: int, seed: int) -> list[tuple[str, str, str, Outcome]]:
    rng = random.Random(seed)
    pairs = [("m1", "m2"), ("m1", "m3"), ("m2", "m3")]
    rows = []
    for _ in range(n):
        a, b = rng.choice(pairs)
        rows.append((a, b, rng.choice(["French", "English"]), rng.choices(OUTCOMES, weights=[4, 4, 1, 1])[0]))
    return rows


def test_a_judge_that_copies_the_people_has_kappa_one_and_a_random_one_about_zero() -> None:
    people = _people(600, seed=1)
    rng = random.Random(2)
    paired = [Paired("copy", a, b, lang, h, h) for a, b, lang, h in people]
    paired += [Paired("dice", a, b, lang, h, rng.choice(OUTCOMES)) for a, b, lang, h in people]
    copy, dice = judge_agreement(paired, [])
    assert copy.judge == "copy" and copy.kappa is not None and copy.agreement is not None
    assert copy.kappa.value == 1.0 and copy.agreement.value == 1.0 and copy.rounds == 600
    assert dice.kappa is not None and dice.kappa.lower <= 0.0 <= dice.kappa.upper and abs(dice.kappa.value) < 0.1
    assert {b.name for b in copy.by_pair} == {"m1 vs m2", "m1 vs m3", "m2 vs m3"}
    assert {b.name for b in copy.by_language} == {"English", "French"}
    assert all(b.kappa.value == 1.0 for b in copy.by_language)
    assert copy.sentences[0].startswith("On 600 rounds people also judged, copy agreed 100%")


def test_a_slight_preference_agrees_with_a_preference() -> None:
    report = judge_agreement([Paired("j", "x", "y", None, Outcome.A_SLIGHTLY, Outcome.A)] * 12, [])[0]
    assert report.agreement is not None and report.agreement.value == 1.0


def test_position_flips_unreadable_verdicts_and_self_preference() -> None:
    readings = [Reading("pos", "x", "y", "a", "b", "inconsistent")] * 30  # always picks the first-shown answer
    readings += [Reading("pos", "x", "y", "a", "a", "a")] * 10
    readings += [Reading("pos", "x", "y", "none", "a", "none")] * 5
    # "kin" picks its family member (m1) whenever it fights another model; people split evenly on those rounds
    readings += [Reading("kin", "m1", "m2", "a", "a", "a")] * 40
    people = [Paired("kin", "m1", "m2", None, Outcome.B, Outcome.A)] * 20 + [
        Paired("kin", "m1", "m2", None, Outcome.A, Outcome.A)
    ] * 20
    people += [Paired("kin", "m2", "m1", None, Outcome.A, Outcome.B)] * 20 + [
        Paired("kin", "m2", "m1", None, Outcome.TIE, Outcome.B)
    ] * 20
    kin, pos = judge_agreement(people, readings, {"kin": {"m1"}})
    assert pos.flips is not None and pos.flips.n == 40 and pos.flips.value == 0.75
    assert pos.unreadable is not None and pos.unreadable.value == 5 / 45
    assert pos.sentences[0] == "pos has judged no round a person also judged yet: no agreement can be measured."
    assert kin.self_preference is not None and kin.self_preference.value == 1.0 and kin.self_preference.n == 80
    assert kin.people_preference is not None and kin.people_preference.n == 60  # the 20 ties are no preference
    assert round(kin.people_preference.value, 3) == round(20 / 60, 3)
    assert any("chose its own family 100%" in s and "where people chose it 33%" in s for s in kin.sentences)


def test_the_building_blocks() -> None:
    assert wilson(0, 0).n == 0
    rate = wilson(50, 100)
    assert rate.lower < 0.5 < rate.upper and round(rate.upper - rate.lower, 2) == 0.19
    assert kappa([]).n == 0
    perfect = kappa([(0, 0), (1, 1)] * 20)
    assert perfect.value == 1.0 and perfect.lower == 1.0
