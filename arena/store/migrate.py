"""Bringing a database to the newest schema with Alembic (run at every start; a no-op when current)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

MIGRATIONS = Path(__file__).with_name("migrations")
# pg_advisory_xact_lock key held while migrating, so app processes starting together on one PostgreSQL database
# migrate one after the other (the later ones then find the schema current); any fixed 64-bit number would do
MIGRATION_LOCK = 0x636F7272616C  # "corral"


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    """The newest migration's revision id."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None, "the migrations folder has no revisions"
    return head


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply every pending migration to the database behind `engine`, in one transaction.

    On PostgreSQL the transaction first takes an advisory lock, so concurrent upgrades (several app processes
    starting at once) wait for each other instead of racing to create the same tables; the later ones then find
    the schema current and do nothing.
    """
    cfg = _config()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)
