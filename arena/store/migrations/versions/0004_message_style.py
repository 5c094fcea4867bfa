"""Each battle answer's style (estimated tokens, markdown headers, list items, bold spans outside code), for
style-controlled ratings: four columns on messages, counted when an answer is stored, and on each vote both
sides' sums up to the judged round, taken when the vote is stored. Backfilled here for what is already stored
(messages in batches, so a large database is not read into memory at once; then one UPDATE of the votes).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from arena.style import style_counts

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

COLUMNS = ("style_tokens", "style_headers", "style_lists", "style_bold")
VOTE_COLUMNS = tuple(f"style_{side}_{name}" for side in "ab" for name in ("tokens", "headers", "lists", "bold"))
BATCH = 5000


def upgrade() -> None:
    """Add the columns, then count every stored battle answer."""
    with op.batch_alter_table("messages") as batch:
        for name in COLUMNS:
            batch.add_column(sa.Column(name, sa.Integer, nullable=True))
    bind = op.get_bind()
    answers = sa.text(
        """
        SELECT m.id, m.content FROM messages m JOIN conversations c ON c.id = m.conversation_id
        WHERE c.kind = 'battle' AND m.role = 'assistant' AND m.id > :after ORDER BY m.id LIMIT :batch
        """
    )
    fill = sa.text(
        "UPDATE messages SET style_tokens = :tokens, style_headers = :headers, style_lists = :lists, "
        "style_bold = :bold WHERE id = :id"
    )
    after = 0
    while rows := bind.execute(answers, {"after": after, "batch": BATCH}).all():
        counted = []
        for message_id, content in rows:
            style = style_counts(content or "")
            counted.append(
                {
                    "id": message_id,
                    "tokens": style.tokens,
                    "headers": style.headers,
                    "lists": style.lists,
                    "bold": style.bold,
                }
            )
        bind.execute(fill, counted)
        after = rows[-1][0]

    with op.batch_alter_table("votes") as batch:
        for name in VOTE_COLUMNS:
            batch.add_column(sa.Column(name, sa.Integer, nullable=True))
    sums = ", ".join(
        f"style_{side}_{name} = (SELECT SUM(m.style_{name}) FROM messages m "
        f"WHERE m.conversation_id = votes.battle_id || '-{side}' AND m.turn_index <= votes.turn_index "
        "AND m.role = 'assistant' AND m.status <> 'superseded')"
        for side in "ab"
        for name in ("tokens", "headers", "lists", "bold")
    )
    op.execute(f"UPDATE votes SET {sums}")


def downgrade() -> None:
    """Drop the columns."""
    with op.batch_alter_table("votes") as batch:
        for name in reversed(VOTE_COLUMNS):
            batch.drop_column(name)
    with op.batch_alter_table("messages") as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)
