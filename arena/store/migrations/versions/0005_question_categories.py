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
from arena.store.count_tables import recount

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
    recount([*CELL, "categories"])


def downgrade() -> None:
    """Recount without categories, then drop the columns."""
    recount(CELL)
    with op.batch_alter_table("votes") as batch:
        batch.drop_column("categories")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("categories")
