"""`python -m arena prune` and `python -m arena backup`: the maintenance sub-commands (listed in __main__)."""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from arena.config import RetentionConfig
    from arena.settings import Settings

PRUNE_HELP = "delete or anonymise voter data older than the retention period"
BACKUP_HELP = "copy the live SQLite database with SQLite's online backup API"


def add_prune_arguments(p: argparse.ArgumentParser, settings: Settings) -> None:
    """Give the prune sub-command its arguments."""
    p.add_argument("--db", default=settings.db_url, help="SQLAlchemy URL")
    p.add_argument("--config", type=Path, help="the app's config file, for arena.retention (days, action)")
    p.add_argument("--days", type=int, help="keep this many days (overrides arena.retention.days)")
    p.add_argument("--action", choices=["delete", "anonymise"], help="overrides arena.retention.action")
    p.add_argument("--dry-run", action="store_true", help="count what would change, change nothing")
    p.set_defaults(run=_prune)


def add_backup_arguments(p: argparse.ArgumentParser, settings: Settings) -> None:
    """Give the backup sub-command its arguments."""
    p.add_argument("--db", default=settings.db_url, help="SQLAlchemy URL")
    p.add_argument("--out", type=Path, required=True, help="the backup file to write")
    p.set_defaults(run=_backup)


def _retention(config: Path | None) -> RetentionConfig:
    """Only `arena.retention` of the app's config: pruning must not need the models on this machine."""
    import yaml
    from pydantic import ValidationError

    from arena.config import ConfigError, RetentionConfig  # pydantic and the backend kinds: only for `prune`

    if config is None:
        return RetentionConfig()

    try:
        data = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
        section = (data.get("arena") or {}).get("retention") or {} if isinstance(data, dict) else {}
        return RetentionConfig.model_validate(section)
    except (OSError, yaml.YAMLError, AttributeError) as exc:
        raise ConfigError(f"{config}: cannot read it ({type(exc).__name__})") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{config}: arena.retention.{where}: {first['msg']}") from None


def _prune(args: argparse.Namespace) -> int:
    from arena.config import ConfigError
    from arena.store.engine import make_engine
    from arena.store.migrate import upgrade
    from arena.store.repository import Repository, utcnow

    try:
        retention = _retention(args.config)
    except ConfigError as exc:
        print(f"arena: {exc}", file=sys.stderr)
        return 2
    days = args.days if args.days is not None else retention.days
    if days is None or days < 1:
        print("arena: say how many days to keep: --days N (N ≥ 1) or arena.retention.days", file=sys.stderr)
        return 2
    if _missing_sqlite(args.db):
        return 2
    engine = make_engine(args.db)
    upgrade(engine)
    repo = Repository(engine)
    now = utcnow()
    report = repo.prune(cutoff=now - timedelta(days=days), action=args.action or retention.action, dry_run=args.dry_run)
    closed = (
        0
        if args.dry_run
        else repo.close_open_battles(idle_before=now - timedelta(minutes=retention.close_idle_battles_after_minutes))
    )
    verb = "would change" if args.dry_run else "changed"
    print(
        f"{report.action} before {report.cutoff:%Y-%m-%d %H:%M} UTC ({days} days): {verb} "
        f"{report.battles} battles, {report.votes} votes, {report.conversations} conversations, "
        f"{report.messages} messages, {report.feedback} feedback rows ({report.comments} comments dropped); "
        f"{closed} idle open battles closed as incomplete"
    )
    return 0


def _backup(args: argparse.Namespace) -> int:
    from arena.maintenance import BackupError, backup_sqlite, pg_dump_guidance, sqlite_path

    try:
        path = sqlite_path(args.db)
        if path is None:
            print(pg_dump_guidance(args.db, args.out), file=sys.stderr)
            return 2  # nothing was written: a script must not take this for a backup
        size = backup_sqlite(path, args.out)
    except BackupError as exc:
        print(f"arena: {exc}", file=sys.stderr)
        return 2
    print(f"backed up {path} to {args.out} ({size:,} bytes, integrity ok)")
    return 0


def _missing_sqlite(url: str) -> bool:
    from arena.maintenance import BackupError, sqlite_path

    try:
        path = sqlite_path(url)
    except BackupError:
        return False
    if path is not None and not path.exists():
        print(f"arena: no database at {path} (give --db or DATABASE_URL)", file=sys.stderr)
        return True
    return False
