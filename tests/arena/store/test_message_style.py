"""Each battle answer's style is counted when it is stored, and a migration counts the answers stored before."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text

from arena.domain import Outcome, Side, VoteFilter, Voter
from arena.store.engine import make_engine
from arena.store.migrate import upgrade
from arena.store.repository import Repository
from arena.style import style_counts
from tests.arena.store.test_repository import ok
from tests.support.battles import store_round, stored_before

MARKDOWN = "# Plan\n\n1. **First** step\n2. Second step\n\n```\n# not a header\n```"
STYLE = "SELECT role, style_tokens, style_headers, style_lists, style_bold FROM messages ORDER BY id"


def test_answers_are_counted_when_stored_and_questions_are_not(repo: Repository) -> None:
    repo.create_battle(battle_id="s" * 32, models={Side.A: "x", Side.B: "y"}, voter=Voter("s1"))
    store_round(repo, "s" * 32, (ok(MARKDOWN), ok("Plain words.")), text="# A question with a header")
    with repo.engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(text(STYLE))]
    assert style_counts(MARKDOWN).as_tuple() == (24, 1, 2, 1)
    assert rows == [
        ("user", None, None, None, None),
        ("assistant", 24, 1, 2, 1),
        ("user", None, None, None, None),
        ("assistant", 3, 0, 0, 0),
    ]


def test_the_migration_counts_the_battle_answers_already_stored(empty_db_url: str) -> None:
    engine = make_engine(empty_db_url)
    upgrade(engine, "0003")  # as the release before left it
    now = datetime(2026, 11, 1, tzinfo=UTC)
    with engine.begin() as conn:
        stored_before(conn, now, {"b1-a": "b1", "c1": None})
        for conv, role, content in (
            ("b1-a", "user", "# question"),
            ("b1-a", "assistant", MARKDOWN),
            ("c1", "assistant", MARKDOWN),
        ):
            conn.execute(
                text(
                    "INSERT INTO messages (conversation_id, turn_index, role, content, status, created_at) "
                    "VALUES (:conv, 0, :role, :content, 'ok', :now)"
                ),
                {"conv": conv, "role": role, "content": content, "now": now},
            )
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO votes (battle_id, turn_index, outcome, anonymous, session_id, created_at, "
                "identity_leak) VALUES ('b1', 0, 'a', true, 's', :now, false)"
            ),
            {"now": now},
        )
    upgrade(engine)
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(text(STYLE))]
    assert rows == [("user", None, None, None, None), ("assistant", 24, 1, 2, 1), ("assistant", None, None, None, None)]
    with engine.connect() as conn:
        votes = [tuple(r) for r in conn.execute(text(VOTE_STYLE))]
    assert votes == [(0, 24, 1, 2, 1, None, None, None, None)]  # side b has no stored answer here
    engine.dispose()


VOTE_STYLE = (
    "SELECT turn_index, style_a_tokens, style_a_headers, style_a_lists, style_a_bold, "
    "style_b_tokens, style_b_headers, style_b_lists, style_b_bold FROM votes ORDER BY turn_index"
)


def test_a_vote_keeps_both_sides_style_up_to_its_round(repo: Repository) -> None:
    voter = Voter("s2")
    repo.create_battle(battle_id="t" * 32, models={Side.A: "x", Side.B: "y"}, voter=voter)
    store_round(repo, "t" * 32, (ok(MARKDOWN), ok("Plain words.")))
    repo.record_vote(battle_id="t" * 32, turn_index=0, outcome=Outcome.A, anonymous=True, voter=voter)
    store_round(repo, "t" * 32, (ok("**Bold** again."), ok("- one\n- two")), turn=1)
    repo.record_battle_turn(  # round 1 regenerated: only the new answers count
        battle_id="t" * 32,
        turn_index=1,
        user_text="q",
        replies={Side.A: ok("Short."), Side.B: ok("- one\n- two\n- three")},
        params={Side.A: {}, Side.B: {}},
        regenerated=True,
    )
    repo.record_vote(battle_id="t" * 32, turn_index=1, outcome=Outcome.B, anonymous=False, voter=voter)
    with repo.engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(text(VOTE_STYLE))]
    assert rows == [(0, 24, 1, 2, 1, 3, 0, 0, 0), (1, 24 + 2, 1, 2, 1, 3 + 6, 0, 3, 0)]
    # what style-controlled ratings read: the anonymous vote only, by default
    kept = repo.style_votes()
    assert (kept.model_a, kept.model_b, kept.outcome) == (["x"], ["y"], ["a"])
    assert kept.counts_a.tolist() == [[24, 1, 2, 1]] and kept.counts_b.tolist() == [[3, 0, 0, 0]]
    assert len(repo.style_votes(VoteFilter(include_named=True))) == 2
