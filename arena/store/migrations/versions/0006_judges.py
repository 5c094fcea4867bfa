"""AI judges beside human voters: each vote names its voter kind ("human", or "judge:NAME"), one vote per round
and voter, the counts tables key on it (so a judge's board reads counts), and a judgements table keeps every
judge's reading of a round (its raw answers, both orders with swap, and the verdict: also the inconsistent and
unreadable ones, which are not votes). What is stored already is human.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from arena.store.count_tables import recount

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

CELL = ["model_a", "model_b", "outcome", "anonymous", "identity_leak", "mode", "language", "categories"]


def upgrade() -> None:
    """Add votes.voter and the judgements table, then recount keyed on the voter."""
    with op.batch_alter_table("votes") as batch:
        batch.add_column(sa.Column("voter", sa.String(80), nullable=False, server_default="human"))
        batch.drop_constraint("uq_votes_battle_turn", type_="unique")
        batch.create_unique_constraint("uq_votes_battle_turn_voter", ["battle_id", "turn_index", "voter"])
    op.create_table(
        "judgements",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("battle_id", sa.String(32), sa.ForeignKey("battles.id"), nullable=False),
        sa.Column("turn_index", sa.Integer, nullable=False),
        sa.Column("judge", sa.String(80), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("first_verdict", sa.String(16), nullable=False),
        sa.Column("second_verdict", sa.String(16), nullable=True),
        sa.Column("first_text", sa.Text, nullable=False),
        sa.Column("second_text", sa.Text, nullable=True),
        sa.Column("judge_ms", sa.Float, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("battle_id", "turn_index", "judge", name="uq_judgements_battle_turn_judge"),
    )
    recount([*CELL, "voter"])


def downgrade() -> None:
    """Drop the judges' votes and judgements, then the column."""
    op.execute("DELETE FROM votes WHERE voter <> 'human'")
    recount(CELL)
    op.drop_table("judgements")
    with op.batch_alter_table("votes") as batch:
        batch.drop_constraint("uq_votes_battle_turn_voter", type_="unique")
        batch.create_unique_constraint("uq_votes_battle_turn", ["battle_id", "turn_index"])
        batch.drop_column("voter")
