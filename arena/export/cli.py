"""`python -m arena export …`: the command line of exports (arguments, secrets from the environment, the summary)."""

from __future__ import annotations

import argparse
import sys
import tempfile
import textwrap
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from arena.settings import HUB_TOKEN_ENV, Settings
from arena.vote_filter_cli import add_vote_filter_arguments, vote_filter

if TYPE_CHECKING:
    from arena.domain import VoteFilter
    from arena.export.run import Summary

HELP = "votes and chat ratings as training data, battle records or raw records"


def add_export_arguments(p: argparse.ArgumentParser, settings: Settings) -> None:
    """Give the export sub-command its arguments (the format registry is imported here, for this sub-command only)."""
    from arena.export import formats
    from arena.export.formats import FORMATS

    p.description = (
        "Write votes as training data. Only anonymous votes without an identity leak or self-play go out unless "
        "you ask for more. A summary of rows written and skipped goes to stderr."
    )
    p.epilog = _formats_epilog()
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("--format", required=True, choices=list(FORMATS), help=" | ".join(FORMATS))
    p.add_argument("--out", required=True, type=Path, help="the file to write: .jsonl or .parquet")
    p.add_argument(
        "--db", default=settings.db_url, help="SQLAlchemy URL (default: DATABASE_URL or the app's SQLite file)"
    )
    add_vote_filter_arguments(p)
    p.add_argument("--min-turns", type=int, default=1, help="only rounds at least this deep in their conversation")
    p.add_argument(
        "--margin", action="store_true", help=f"{formats.with_margin()}: add a margin column from the leaderboard's fit"
    )
    p.add_argument("--config", type=Path, help="the arena's config, for the models' licenses in the dataset card")
    p.add_argument(
        "--push-to-hub", metavar="REPO_ID", help=f"upload the file and a dataset card (token: {HUB_TOKEN_ENV})"
    )
    p.add_argument("--private", action="store_true", help="with --push-to-hub: create the dataset as private")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run, settings=settings)


def _formats_epilog() -> str:
    """One wrapped entry per export format, from the registry."""
    from arena.export.formats import FORMATS

    entries = [
        textwrap.fill(fmt.explain, width=100, initial_indent=f"  {name:<14}", subsequent_indent=" " * 16)
        for name, fmt in FORMATS.items()
    ]
    return "formats:\n" + "\n".join(entries)


def judge_key(settings: Settings) -> bytes:
    """The key that anonymises voter ids: the app's IP-hash salt, so ids stay stable from one export to the next."""
    from arena.privacy import deployment_salt

    return deployment_salt(settings.salt, settings.resolved_data_dir)


def _fail(message: str) -> int:
    print(f"arena export: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    """Run one export; exit 2 with one sentence on bad input."""
    from arena.export.run import EXPORT_FILTER
    from arena.export.writers import ExportError
    from arena.privacy import SaltError

    token = args.settings.hub_token or ""
    try:
        out = _checked_target(args, token)
        filters = vote_filter(args, replace(EXPORT_FILTER, min_turns=args.min_turns))
        summary = _export(args, out, filters)
    except (ExportError, SaltError) as exc:
        return _fail(str(exc))
    for line in summary.lines():
        print(line, file=sys.stderr)
    if args.push_to_hub:
        _publish(args, out, summary, filters, token)
    return 0


def _checked_target(args: argparse.Namespace, token: str) -> Path:
    """The resolved output file, once the arguments make sense together; refuses with an ExportError otherwise."""
    from sqlalchemy.engine import make_url

    from arena.export import formats
    from arena.export.writers import ExportError, check_target

    fmt = formats.get(args.format)
    if args.margin and not fmt.margin:
        raise ExportError(f"--margin only applies to --format {formats.with_margin()}.")
    if args.private and not args.push_to_hub:
        raise ExportError("--private only applies with --push-to-hub.")
    if args.min_turns < 1:
        raise ExportError("--min-turns must be 1 or more.")
    if args.push_to_hub and not token:
        raise ExportError(f"--push-to-hub needs a Hugging Face token in the {HUB_TOKEN_ENV} environment variable.")
    if args.config is not None and not args.config.is_file():
        raise ExportError(f"There is no config file at {args.config}.")
    out: Path = args.out.expanduser().resolve()
    check_target(out, fmt)
    url = make_url(args.db)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        raise ExportError(f"There is no database at {url.database} (give --db or DATABASE_URL).")
    return out


def _export(args: argparse.Namespace, out: Path, filters: VoteFilter) -> Summary:
    """Write the export, with a progress bar on a terminal."""
    from arena.export.formats import Judges
    from arena.export.run import export, leaderboard_strengths
    from arena.store.engine import make_engine
    from arena.store.migrate import upgrade

    judges = Judges(judge_key(args.settings))
    engine = make_engine(args.db)
    upgrade(engine)
    strengths = leaderboard_strengths(engine, filters) if args.margin else None
    with _progress(args.quiet) as tick:
        return export(engine, args.format, out, filters, judges=judges, strengths=strengths, progress=tick)


def _publish(args: argparse.Namespace, out: Path, summary: Summary, filters: VoteFilter, token: str) -> None:
    """Upload the file and a dataset card to the hub repository named by --push-to-hub."""
    from arena.export.card import model_notes, stage, upload
    from arena.export.run import counted

    with tempfile.TemporaryDirectory(prefix="corral-hub-") as folder:
        staged = stage(out, summary, filters, model_notes(args.config), Path(folder))
        rows = counted(summary.rows, "row")
        print(f"Uploading {rows} and a dataset card to {args.push_to_hub} …", file=sys.stderr)
        print(upload(staged, args.push_to_hub, private=args.private, token=token), file=sys.stderr)


class _progress:
    """A tqdm bar on stderr when it is a terminal (and not --quiet); otherwise nothing."""

    def __init__(self, quiet: bool) -> None:
        self._bar: Any = None
        if not quiet and sys.stderr.isatty():
            from tqdm import tqdm  # type: ignore[import-untyped]

            self._bar = tqdm(unit=" records", file=sys.stderr, unit_scale=True)

    def __enter__(self) -> Callable[[int], None] | None:
        return None if self._bar is None else self._bar.update

    def __exit__(self, *_exc: object) -> None:
        if self._bar is not None:
            self._bar.close()
