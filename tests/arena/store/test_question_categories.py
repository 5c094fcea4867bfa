"""Each question's categories are taken when it is stored, each vote keeps its round's, the counts key on them, and
a migration categorises what was stored before."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text

from arena.categories import categorise, mask_of
from arena.domain import Outcome, Side, VoteFilter, Voter
from arena.store.engine import make_engine
from arena.store.migrate import upgrade
from arena.store.repository import Repository
from tests.arena.store.test_repository import ok
from tests.support.battles import store_round, stored_before

CODE_QUESTION = "Why does `print(x)` fail in my Python script?"
POEM = "Write a poem about the sea"


def _battle(repo: Repository, battle_id: str, questions: list[tuple[str, Outcome]], voter: Voter) -> None:
    repo.create_battle(battle_id=battle_id, models={Side.A: "x", Side.B: "y"}, voter=voter)
    for turn, (question, outcome) in enumerate(questions):
        store_round(repo, battle_id, (ok("A."), ok("B.")), turn=turn, text=question)
        repo.record_vote(battle_id=battle_id, turn_index=turn, outcome=outcome, anonymous=True, voter=voter)


def test_questions_votes_and_counts_carry_the_categories(repo: Repository) -> None:
    voter = Voter("c1")
    _battle(repo, "c" * 32, [(CODE_QUESTION, Outcome.A), ("And now in Rust?", Outcome.B)], voter)
    _battle(repo, "d" * 32, [(POEM, Outcome.B)], voter)
    code, poem = mask_of(["coding"]), mask_of(["creative_writing"])
    with repo.engine.connect() as conn:
        questions = conn.execute(text("SELECT role, categories FROM messages ORDER BY id")).all()
        votes = conn.execute(text("SELECT battle_id, turn_index, categories FROM votes ORDER BY id")).all()
        cells = conn.execute(text("SELECT categories, SUM(count) FROM vote_totals GROUP BY categories")).all()
    # each side's copy of a question: two rows per round
    users = [c for role, c in questions if role == "user"]
    assert users == [code, code, mask_of(["multi_turn"]), mask_of(["multi_turn"]), poem, poem]
    assert all(c is None for role, c in questions if role == "assistant")
    assert [tuple(v) for v in votes] == [
        ("c" * 32, 0, code),
        ("c" * 32, 1, mask_of(["multi_turn"])),
        ("d" * 32, 0, poem),
    ]
    assert sorted(tuple(c) for c in cells) == sorted([(code, 1), (mask_of(["multi_turn"]), 1), (poem, 1)])

    def outcomes(category: str | None) -> list[tuple[str, str, Outcome, int]]:
        return sorted(repo.pair_outcomes(VoteFilter(category=category)))

    assert outcomes("coding") == [("x", "y", Outcome.A, 1)]
    assert outcomes("multi_turn") == [("x", "y", Outcome.B, 1)]
    assert outcomes("creative_writing") == [("x", "y", Outcome.B, 1)]
    assert outcomes("math") == []
    assert sum(n for *_, n in outcomes(None)) == 3
    # the readers of the votes themselves (style, audit) apply the same filter
    assert len(repo.style_votes(VoteFilter(category="coding"))) == 1
    assert [o for *_, o, _ in repo.voter_outcomes(VoteFilter(category="multi_turn"))] == [Outcome.B]


def test_a_regenerated_round_keeps_its_question_and_its_categories(repo: Repository) -> None:
    voter = Voter("c2")
    repo.create_battle(battle_id="e" * 32, models={Side.A: "x", Side.B: "y"}, voter=voter)
    store_round(repo, "e" * 32, (ok("A."), ok("B.")), text=POEM)
    repo.record_battle_turn(
        battle_id="e" * 32,
        turn_index=0,
        user_text=POEM,
        replies={Side.A: ok("A2."), Side.B: ok("B2.")},
        params={Side.A: {}, Side.B: {}},
        regenerated=True,
    )
    repo.record_vote(battle_id="e" * 32, turn_index=0, outcome=Outcome.TIE, anonymous=True, voter=voter)
    assert repo.pair_outcomes(VoteFilter(category="creative_writing")) == [("x", "y", Outcome.TIE, 1)]


def test_pruning_keeps_the_counts_equal_to_a_recount_per_category(repo: Repository) -> None:
    voter = Voter("c3")
    _battle(repo, "f" * 32, [(CODE_QUESTION, Outcome.A)], voter)
    repo.prune(cutoff=datetime(2100, 1, 1, tzinfo=UTC), action="delete")
    assert repo.pair_outcomes(VoteFilter(category="coding")) == []
    with repo.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM vote_counts")).scalar() == 0


def test_the_migration_categorises_what_was_stored_before(empty_db_url: str) -> None:
    engine = make_engine(empty_db_url)
    upgrade(engine, "0004")  # as the release before left it
    now = datetime(2026, 11, 1, tzinfo=UTC)
    with engine.begin() as conn:
        stored_before(conn, now, {"b1-a": "b1", "b1-b": "b1", "c1": None})
        for conv, turn, role, content in (
            ("b1-a", 0, "user", CODE_QUESTION),
            ("b1-a", 0, "assistant", "A."),
            ("b1-b", 0, "user", CODE_QUESTION),
            ("b1-b", 0, "assistant", "B."),
            ("b1-a", 1, "user", POEM),
            ("b1-b", 1, "user", POEM),
            ("c1", 0, "user", "Solve x^2 = 4"),
        ):
            conn.execute(
                text(
                    "INSERT INTO messages (conversation_id, turn_index, role, content, status, created_at) "
                    "VALUES (:conv, :turn, :role, :content, 'ok', :now)"
                ),
                {"conv": conv, "turn": turn, "role": role, "content": content, "now": now},
            )
        for turn, outcome in ((0, "a"), (1, "b")):
            conn.execute(
                text(
                    "INSERT INTO votes (battle_id, turn_index, outcome, anonymous, session_id, created_at, "
                    "identity_leak) VALUES ('b1', :turn, :outcome, true, 's', :now, false)"
                ),
                {"turn": turn, "outcome": outcome, "now": now},
            )
    upgrade(engine)
    with engine.connect() as conn:
        questions = conn.execute(text("SELECT content, categories FROM messages WHERE role = 'user' ORDER BY id"))
        assert {content: c for content, c in questions} == {
            CODE_QUESTION: categorise(CODE_QUESTION),
            POEM: categorise(POEM, 1),
            "Solve x^2 = 4": mask_of(["math"]),
        }
        votes = conn.execute(text("SELECT turn_index, categories FROM votes ORDER BY turn_index")).all()
    assert [tuple(v) for v in votes] == [(0, mask_of(["coding"])), (1, mask_of(["creative_writing", "multi_turn"]))]
    repo = Repository(engine)
    assert repo.pair_outcomes(VoteFilter(category="coding")) == [("x", "y", Outcome.A, 1)]
    assert repo.pair_outcomes(VoteFilter(category="creative_writing")) == [("x", "y", Outcome.B, 1)]
    assert sum(n for *_, n in repo.pair_outcomes(VoteFilter(since=now.date()))) == 2  # the daily counts too
    engine.dispose()
