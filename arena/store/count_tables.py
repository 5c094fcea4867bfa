"""Rebuilding the vote-count tables from the votes, for the migrations that change what a count cell keys on.

Each migration passes its own key, so an old migration still builds the tables it built when it was written.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

COLUMN_TYPES: dict[str, Any] = {
    "model_a": sa.String(80),
    "model_b": sa.String(80),
    "outcome": sa.String(16),
    "anonymous": sa.Boolean(),
    "identity_leak": sa.Boolean(),
    "mode": sa.String(16),
    "language": sa.String(32),
    "categories": sa.Integer(),
    "voter": sa.String(80),
}
# where each key column's value comes from, in `FROM votes v JOIN battles b`
SOURCES = {
    "model_a": "b.model_a",
    "model_b": "b.model_b",
    "outcome": "v.outcome",
    "anonymous": "v.anonymous",
    "identity_leak": "v.identity_leak",
    "mode": "b.mode",
    "language": "COALESCE(v.language, 'unknown')",
    "categories": "v.categories",
    "voter": "v.voter",
}


def recount(key: list[str]) -> None:
    """Drop vote_counts and vote_totals and build them again, keyed on `key` (plus the UTC day for vote_counts),
    from the votes stored."""
    op.drop_table("vote_totals")
    op.drop_table("vote_counts")
    for table, dated in (("vote_counts", True), ("vote_totals", False)):
        columns = [sa.Column(name, COLUMN_TYPES[name], nullable=False) for name in key]
        if dated:
            columns.append(sa.Column("day", sa.String(10), nullable=False))
        columns.append(sa.Column("count", sa.Integer, nullable=False))
        op.create_table(table, *columns, sa.PrimaryKeyConstraint(*key, *(["day"] if dated else [])))
    # the vote's UTC day: SQLite stores the UTC wall time as text; PostgreSQL's text form follows the session zone
    if op.get_bind().dialect.name == "postgresql":
        day = "to_char(v.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
    else:
        day = "SUBSTR(CAST(v.created_at AS TEXT), 1, 10)"
    values = ", ".join(SOURCES[name] for name in key)
    names = ", ".join(key)
    op.execute(
        f"INSERT INTO vote_counts ({names}, day, count) SELECT {values}, {day}, COUNT(*) "
        f"FROM votes v JOIN battles b ON b.id = v.battle_id GROUP BY {values}, {day}"
    )
    op.execute(f"INSERT INTO vote_totals ({names}, count) SELECT {names}, SUM(count) FROM vote_counts GROUP BY {names}")
