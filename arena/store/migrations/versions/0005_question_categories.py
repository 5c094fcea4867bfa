"""Each question's categories (arena.categories: coding, math, creative writing, hard prompts, multi-turn, long
queries) as a bit mask on messages, taken when a question is stored; each vote keeps its judged round's mask, and
the counts tables key on it, so a board per category reads counts. Backfilled here: questions in batches (the
rules run in Python), then the votes in one UPDATE, then the counts recounted from the votes.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from arena.categories import categorise

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BATCH = 5000
CELL = ["model_a", "model_b", "outcome", "anonymous", "identity_leak", "mode", "language"]


def upgrade() -> None:
    """Add the columns, categorise every stored question, copy each vote's, and recount."""
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("categories", sa.Integer, nullable=True))
    bind = op.get_bind()
    questions = sa.text(
        "SELECT id, content, turn_index FROM messages WHERE role = 'user' AND id > :after ORDER BY id LIMIT :batch"
    )
    fill = sa.text("UPDATE messages SET categories = :categories WHERE id = :id")
    after = 0
    while rows := bind.execute(questions, {"after": after, "batch": BATCH}).all():
        bind.execute(fill, [{"id": i, "categories": categorise(text or "", turn)} for i, text, turn in rows])
        after = rows[-1][0]

    with op.batch_alter_table("votes") as batch:
        batch.add_column(sa.Column("categories", sa.Integer, nullable=False, server_default="0"))
    op.execute(
        "UPDATE votes SET categories = COALESCE((SELECT m.categories FROM messages m "
        "WHERE m.conversation_id = votes.battle_id || '-a' AND m.turn_index = votes.turn_index "
        "AND m.role = 'user'), 0)"
    )
    _recount(with_categories=True)


def downgrade() -> None:
    """Recount without categories, then drop the columns."""
    _recount(with_categories=False)
    with op.batch_alter_table("votes") as batch:
        batch.drop_column("categories")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("categories")


def _recount(*, with_categories: bool) -> None:
    """Rebuild vote_counts and vote_totals from the votes, keyed on categories or not (0003's tables otherwise)."""
    key = CELL + (["categories"] if with_categories else [])
    op.drop_table("vote_totals")
    op.drop_table("vote_counts")
    for table, dated in (("vote_counts", True), ("vote_totals", False)):
        columns = [
            sa.Column("model_a", sa.String(80), nullable=False),
            sa.Column("model_b", sa.String(80), nullable=False),
            sa.Column("outcome", sa.String(16), nullable=False),
            sa.Column("anonymous", sa.Boolean, nullable=False),
            sa.Column("identity_leak", sa.Boolean, nullable=False),
            sa.Column("mode", sa.String(16), nullable=False),
            sa.Column("language", sa.String(32), nullable=False),
        ]
        if with_categories:
            columns.append(sa.Column("categories", sa.Integer, nullable=False))
        if dated:
            columns.append(sa.Column("day", sa.String(10), nullable=False))
        columns.append(sa.Column("count", sa.Integer, nullable=False))
        op.create_table(table, *columns, sa.PrimaryKeyConstraint(*key, *(["day"] if dated else [])))
    # the vote's UTC day: SQLite stores the UTC wall time as text; PostgreSQL's text form follows the session zone
    if op.get_bind().dialect.name == "postgresql":
        day = "to_char(v.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
    else:
        day = "SUBSTR(CAST(v.created_at AS TEXT), 1, 10)"
    values = "b.model_a, b.model_b, v.outcome, v.anonymous, v.identity_leak, b.mode, COALESCE(v.language, 'unknown')"
    if with_categories:
        values += ", v.categories"
    names = ", ".join(key)
    op.execute(
        f"INSERT INTO vote_counts ({names}, day, count) SELECT {values}, {day}, COUNT(*) "
        f"FROM votes v JOIN battles b ON b.id = v.battle_id GROUP BY {values}, {day}"
    )
    op.execute(f"INSERT INTO vote_totals ({names}, count) SELECT {names}, SUM(count) FROM vote_counts GROUP BY {names}")
