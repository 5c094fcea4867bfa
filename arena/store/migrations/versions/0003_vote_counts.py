"""Vote counts per (pair, outcome, filters) all-time and per UTC day, kept in the vote's transaction, so ratings
read a few thousand rows instead of every vote. Backfilled from the votes already stored.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create vote_counts and fill it from votes."""
    op.create_table(
        "vote_counts",
        sa.Column("model_a", sa.String(80), nullable=False),
        sa.Column("model_b", sa.String(80), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("anonymous", sa.Boolean, nullable=False),
        sa.Column("identity_leak", sa.Boolean, nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("language", sa.String(32), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint(
            "model_a", "model_b", "outcome", "anonymous", "identity_leak", "mode", "language", "day"
        ),
    )
    # the vote's UTC day: SQLite stores the UTC wall time as text; PostgreSQL's text form follows the session zone
    if op.get_bind().dialect.name == "postgresql":
        day = "to_char(v.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
    else:
        day = "SUBSTR(CAST(v.created_at AS TEXT), 1, 10)"
    op.execute(
        f"""
        INSERT INTO vote_counts (model_a, model_b, outcome, anonymous, identity_leak, mode, language, day, count)
        SELECT b.model_a, b.model_b, v.outcome, v.anonymous, v.identity_leak, b.mode,
               COALESCE(v.language, 'unknown'), {day}, COUNT(*)
        FROM votes v JOIN battles b ON b.id = v.battle_id
        GROUP BY b.model_a, b.model_b, v.outcome, v.anonymous, v.identity_leak, b.mode,
                 COALESCE(v.language, 'unknown'), {day}
        """
    )

    key = ["model_a", "model_b", "outcome", "anonymous", "identity_leak", "mode", "language"]
    op.create_table(
        "vote_totals",
        sa.Column("model_a", sa.String(80), nullable=False),
        sa.Column("model_b", sa.String(80), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("anonymous", sa.Boolean, nullable=False),
        sa.Column("identity_leak", sa.Boolean, nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("language", sa.String(32), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint(*key),
    )
    columns = ", ".join(key)
    op.execute(
        f"INSERT INTO vote_totals ({columns}, count) SELECT {columns}, SUM(count) FROM vote_counts GROUP BY {columns}"
    )


def downgrade() -> None:
    """Drop both tables."""
    op.drop_table("vote_totals")
    op.drop_table("vote_counts")
