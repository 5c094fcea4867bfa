"""The migration entry point: the head read from the versions folder agrees with Alembic's, and a database already
at the head is recognised without importing Alembic (an older one still migrates, under the usual lock)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from arena.store.engine import make_engine
from arena.store.migrate import MIGRATIONS, head_revision, upgrade

ROOT = Path(__file__).resolve().parents[3]
UPGRADE = """
import sys
from arena.store.engine import make_engine
from arena.store.migrate import upgrade
upgrade(make_engine(sys.argv[1]))
print("alembic" in sys.modules)
"""


def test_the_head_read_from_the_files_is_alembics() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    assert head_revision() == ScriptDirectory.from_config(cfg).get_current_head()


def upgraded_in_a_new_process(url: str) -> bool:
    """Run upgrade() on `url` in a fresh interpreter; whether it had to import Alembic."""
    done = subprocess.run(
        [sys.executable, "-c", UPGRADE, url], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    return done.stdout.strip() == "True"


def test_only_a_pending_migration_imports_alembic(empty_db_url: str) -> None:
    engine = make_engine(empty_db_url)
    upgrade(engine, "0002")  # as an older release left it
    assert upgraded_in_a_new_process(empty_db_url)  # a migration is pending: Alembic runs it
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [head_revision()]
    assert not upgraded_in_a_new_process(empty_db_url)  # at the head: one read of alembic_version, nothing else
    engine.dispose()
