"""A small arena history recorded through the real repository: the data every export test reads."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from arena.domain import BattleMode, Outcome, Reply, ReplyStatus, Side, Voter
from arena.export.formats import Judges
from arena.store.engine import make_engine
from arena.store.repository import Repository

JUDGES = Judges(b"export-test-key-0123456789")
ALICE = Voter(session_id="session-alice", ip_hash="hash-alice")
BOB = Voter(session_id="session-bob", ip_hash="hash-bob")


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def ok(text: str, status: ReplyStatus = ReplyStatus.OK) -> Reply:
    return Reply(text=text, status=status, ttft_ms=10.0, total_ms=50.0, tokens=5)


@dataclass
class History:
    """What was recorded, for the assertions."""

    engine: Engine
    repo: Repository
    clock: Clock


Record = Callable[..., None]


def battle(
    h: History,
    battle_id: str,
    rounds: list[tuple[str, str, str, Outcome | None]],
    *,
    models: tuple[str, str] = ("vigogne-7b", "alpaca-zh"),
    mode: BattleMode = BattleMode.ANONYMOUS,
    voter: Voter = ALICE,
    leak: bool = False,
    language: str | None = "French",
    stopped: bool = False,
) -> None:
    """A battle with one (question, answer A, answer B, vote) per round; a vote of None leaves the round unvoted."""
    h.repo.create_battle(
        battle_id=battle_id, models={Side.A: models[0], Side.B: models[1]}, voter=voter, mode=mode, language=language
    )
    for turn, (question, a, b, outcome) in enumerate(rounds):
        status = ReplyStatus.STOPPED if stopped else ReplyStatus.OK
        h.repo.record_battle_turn(
            battle_id=battle_id,
            turn_index=turn,
            user_text=question,
            replies={Side.A: ok(a, status), Side.B: ok(b)},
            params={Side.A: {"seed": 1}, Side.B: {"seed": 2}},
            language=language,
            identity_leak=leak,
        )
        if outcome is not None:
            h.repo.record_vote(
                battle_id=battle_id,
                turn_index=turn,
                outcome=outcome,
                anonymous=mode is not BattleMode.NAMED,
                voter=voter,
                identity_leak=leak,
                language=language,
            )
        h.clock.now += timedelta(minutes=1)


@pytest.fixture
def history(db_url: str) -> History:
    """Battles covering every case an export distinguishes, and two rated chat answers."""
    clock = Clock()
    engine = make_engine(db_url)
    h = History(engine, Repository(engine, clock=clock), clock)
    # 1. two rounds, A wins the first, B the second: the second prompt carries the first round
    battle(
        h,
        "b1" + "0" * 30,
        [
            ("Quelle est la capitale ?", "Paris.", "Lyon.", Outcome.A),
            ("Et sa population ?", "Deux millions.", "Trois.", Outcome.B),
        ],
    )
    battle(h, "b2" + "0" * 30, [("Un poème ?", "Des roses.", "Des lys.", Outcome.TIE)])
    battle(h, "b3" + "0" * 30, [("Deux plus deux ?", "Cinq.", "Six.", Outcome.BOTH_BAD)])
    battle(h, "b4" + "0" * 30, [("Named?", "Yes.", "No.", Outcome.A)], mode=BattleMode.NAMED, language="English")
    battle(h, "b5" + "0" * 30, [("Who are you?", "I am Vigogne.", "A model.", Outcome.B)], leak=True)
    battle(
        h,
        "b6" + "0" * 30,
        [("Self?", "Answer one.", "Answer two.", Outcome.A)],
        models=("vigogne-7b", "vigogne-7b"),
        mode=BattleMode.SELF_PLAY,
        voter=BOB,
    )
    # 7. the same pair of answers as battle 1's first round, voted again by someone else: a duplicate for dpo
    h.clock.now += timedelta(days=2)
    battle(h, "b7" + "0" * 30, [("Quelle est la capitale ?", "Paris.", "Lyon.", Outcome.A)], voter=BOB)
    battle(
        h, "b8" + "0" * 30, [("你好", "你好！", "嗨", Outcome.B)], models=("belle-7b", "alpaca-zh"), language="Chinese"
    )
    battle(h, "b9" + "0" * 30, [("Unvoted?", "Yes.", "No.", None)])
    battle(h, "ba" + "0" * 30, [("Stop me", "Partial", "Full answer.", Outcome.A)], stopped=True)
    # chats: 👍 on a second answer, 👎 on a first
    for conv, model, rating in (("chat-1", "vigogne-7b", "up"), ("chat-2", "belle-7b", "down")):
        h.repo.create_chat(conversation_id=conv, model=model, voter=ALICE)
        answer = 0
        for turn in range(2 if rating == "up" else 1):
            answer = h.repo.record_chat_turn(
                conversation_id=conv,
                turn_index=turn,
                user_text=f"Question {turn + 1}",
                reply=ok(f"Réponse {turn + 1}"),
                model=model,
                params={},
                language="French",
            )
        h.repo.record_feedback(message_id=answer, rating=rating, tags=["helpful"], comment="bien", voter=ALICE)
    return h
