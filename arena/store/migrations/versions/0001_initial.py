"""Battles, conversations, messages and votes.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the first tables."""
    op.create_table(
        "battles",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("model_a", sa.String(80), nullable=False),
        sa.Column("model_b", sa.String(80), nullable=False),
        sa.Column("anonymous", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("ip_hash", sa.String(64)),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("finished_at", TZ),
    )
    op.create_table(
        "conversations",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("battle_id", sa.String(32), sa.ForeignKey("battles.id")),
        sa.Column("side", sa.String(1)),
        sa.Column("model", sa.String(80), nullable=False),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("ip_hash", sa.String(64)),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("battle_id", "side"),
    )
    op.create_index("ix_conversations_battle_id", "conversations", ["battle_id"])
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("conversation_id", sa.String(40), sa.ForeignKey("conversations.id"), nullable=False),
        sa.Column("turn_index", sa.Integer, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("model", sa.String(80)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("ttft_ms", sa.Float),
        sa.Column("total_ms", sa.Float),
        sa.Column("token_count", sa.Integer),
        sa.Column("generation_params", sa.JSON),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_index("ix_messages_conversation_turn", "messages", ["conversation_id", "turn_index"])
    op.create_table(
        "votes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("battle_id", sa.String(32), sa.ForeignKey("battles.id"), nullable=False),
        sa.Column("turn_index", sa.Integer, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("anonymous", sa.Boolean, nullable=False),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("ip_hash", sa.String(64)),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("battle_id", "turn_index", name="uq_votes_battle_turn"),
    )
    op.create_index("ix_votes_created_at", "votes", ["created_at"])


def downgrade() -> None:
    """Drop the first tables."""
    for table in ("votes", "messages", "conversations", "battles"):
        op.drop_table(table)
