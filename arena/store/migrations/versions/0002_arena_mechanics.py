"""Battle modes, identity leaks, languages, superseded answers and single-chat feedback.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the columns and the feedback table; existing battles become anonymous ones with no leak."""
    with op.batch_alter_table("battles") as batch:
        batch.add_column(sa.Column("mode", sa.String(16), nullable=False, server_default="anonymous"))
        batch.add_column(sa.Column("identity_leak", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("language", sa.String(32)))
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("language", sa.String(32)))
    with op.batch_alter_table("votes") as batch:
        batch.add_column(sa.Column("identity_leak", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("language", sa.String(32)))
    op.create_index("ix_battles_mode", "battles", ["mode"])
    op.create_table(
        "chat_feedback",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.Integer, sa.ForeignKey("messages.id"), nullable=False),
        sa.Column("rating", sa.String(8), nullable=False),
        sa.Column("tags", sa.JSON),
        sa.Column("comment", sa.Text),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("ip_hash", sa.String(64)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("message_id", "session_id", name="uq_feedback_message_session"),
    )


def downgrade() -> None:
    """Drop what upgrade added."""
    op.drop_table("chat_feedback")
    op.drop_index("ix_battles_mode", "battles")
    with op.batch_alter_table("votes") as batch:
        batch.drop_column("language")
        batch.drop_column("identity_leak")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("language")
    with op.batch_alter_table("battles") as batch:
        batch.drop_column("language")
        batch.drop_column("identity_leak")
        batch.drop_column("mode")
