"""Bringing a database to the newest schema with Alembic (run at every start; a no-op when current).

Alembic is imported only when a migration is pending: a database already at the head revision is recognised by
one read of its alembic_version table, so the command-line tools do not pay Alembic's import at every start.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
# pg_advisory_xact_lock key held while migrating, so app processes starting together on one PostgreSQL database
# migrate one after the other (the later ones then find the schema current); any fixed 64-bit number would do
MIGRATION_LOCK = 0x636F7272616C  # "corral"


def _config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def _declared(path: Path) -> tuple[str | None, tuple[str, ...]]:
    """A migration file's `revision` and its parents (`down_revision`), read as Alembic reads them, unimported."""
    values: dict[str, object] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None
        if isinstance(node, ast.AnnAssign):
            target = node.target
        value = getattr(node, "value", None)
        if isinstance(target, ast.Name) and target.id in ("revision", "down_revision") and value is not None:
            values[target.id] = ast.literal_eval(value)
    revision, down = values.get("revision"), values.get("down_revision")
    parents = (down,) if isinstance(down, str) else tuple(down) if isinstance(down, tuple | list) else ()
    return (revision if isinstance(revision, str) else None), tuple(str(p) for p in parents)


def head_revision() -> str:
    """The newest migration's revision id: the one revision of the versions folder that no other revises."""
    declared = [_declared(path) for path in sorted((MIGRATIONS / "versions").glob("*.py"))]
    revisions = {revision for revision, _ in declared if revision is not None}
    heads = revisions - {parent for _, parents in declared for parent in parents}
    assert len(heads) == 1, f"the migrations folder must have one head revision, not {sorted(heads)}"
    return heads.pop()


def _current(engine: Engine) -> bool:
    """Whether the database is already at the head revision (a missing version table: not current)."""
    try:
        with engine.connect() as connection:
            versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except DBAPIError:
        return False
    return versions == [head_revision()]


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply every pending migration to the database behind `engine`, in one transaction.

    On PostgreSQL the transaction first takes an advisory lock, so concurrent upgrades (several app processes
    starting at once) wait for each other instead of racing to create the same tables; the later ones then find
    the schema current and do nothing. A database already at the head is only read, without importing Alembic.
    """
    if revision == "head" and _current(engine):
        return
    from alembic import command

    cfg = _config()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)
