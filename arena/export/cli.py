"""`python -m arena export …`: the command line of exports (arguments, secrets from the environment, the summary)."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from arena.export.formats import FORMATS

HUB_TOKEN_ENV = "HF_TOKEN"


def add_export_parser(sub: Any, *, default_db: str, language: Callable[[str], str]) -> None:
    """Register the export sub-command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "export",
        help="votes and chat ratings as training data (DPO / KTO / reward), LMSYS battles or raw records",
        description="Write votes as training data. Only anonymous votes without an identity leak go out unless "
        "you ask for more. A summary of rows written and skipped goes to stderr.",
    )
    p.add_argument("--format", required=True, choices=FORMATS, help="dpo | kto | reward | lmsys | raw")
    p.add_argument("--out", required=True, type=Path, help="the file to write: .jsonl or .parquet")
    p.add_argument("--db", default=default_db, help="SQLAlchemy URL (default: DATABASE_URL or the app's SQLite file)")
    p.add_argument("--since", type=date.fromisoformat, help="first UTC day (YYYY-MM-DD), inclusive")
    p.add_argument("--until", type=date.fromisoformat, help="last UTC day (YYYY-MM-DD), exclusive")
    p.add_argument("--model", action="append", help="only battles between these models (repeatable)")
    p.add_argument("--language", action="append", type=language, help="only these languages (repeatable; fr, French)")
    p.add_argument("--include-named", action="store_true", help="also votes cast with the model names visible")
    p.add_argument("--include-leaks", action="store_true", help="also votes on rounds that revealed a model's name")
    p.add_argument("--min-turns", type=int, default=1, help="only rounds at least this deep in their conversation")
    p.add_argument("--margin", action="store_true", help="reward: add a margin column from the leaderboard's fit")
    p.add_argument("--config", type=Path, help="the arena's config, for the models' licenses in the dataset card")
    p.add_argument(
        "--push-to-hub", metavar="REPO_ID", help=f"upload the file and a dataset card (token: {HUB_TOKEN_ENV})"
    )
    p.add_argument("--private", action="store_true", help="with --push-to-hub: create the dataset as private")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def judge_key() -> bytes:
    """The key that anonymises voter ids: the app's IP-hash salt, so ids stay stable from one export to the next."""
    from arena.privacy import SALT_ENV, deployment_salt

    root = Path(__file__).resolve().parents[2]  # the app's default data folder, as in app.py
    return deployment_salt(os.environ.get(SALT_ENV), Path(os.environ.get("CORRAL_DATA_DIR", root / "data")))


def _fail(message: str) -> int:
    print(f"arena export: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    """Run one export; exit 2 with one sentence on bad input."""
    from sqlalchemy.engine import make_url

    from arena.export.card import model_notes, stage, upload
    from arena.export.formats import Judges
    from arena.export.run import counted, export, leaderboard_strengths
    from arena.export.writers import ExportError, check_target
    from arena.privacy import SaltError
    from arena.store.engine import make_engine
    from arena.store.export_source import ExportFilters
    from arena.store.migrate import upgrade

    if args.margin and args.format != "reward":
        return _fail("--margin only applies to --format reward.")
    if args.private and not args.push_to_hub:
        return _fail("--private only applies with --push-to-hub.")
    if args.min_turns < 1:
        return _fail("--min-turns must be 1 or more.")
    token = os.environ.get(HUB_TOKEN_ENV, "")
    if args.push_to_hub and not token:
        return _fail(f"--push-to-hub needs a Hugging Face token in the {HUB_TOKEN_ENV} environment variable.")
    if args.config is not None and not args.config.is_file():
        return _fail(f"There is no config file at {args.config}.")
    out: Path = args.out.expanduser().resolve()
    try:
        check_target(out, args.format)
    except ExportError as exc:
        return _fail(str(exc))
    url = make_url(args.db)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        return _fail(f"There is no database at {url.database} (give --db or DATABASE_URL).")
    filters = ExportFilters(
        since=args.since,
        until=args.until,
        models=tuple(args.model) if args.model else None,
        languages=tuple(args.language) if args.language else None,
        include_named=args.include_named,
        include_leaks=args.include_leaks,
        min_turns=args.min_turns,
    )
    try:
        judges = Judges(judge_key())
    except SaltError as exc:
        return _fail(str(exc))
    engine = make_engine(args.db)
    upgrade(engine)
    strengths = leaderboard_strengths(engine, filters) if args.margin else None
    with _progress(args.quiet) as tick:
        try:
            summary = export(engine, args.format, out, filters, judges=judges, strengths=strengths, progress=tick)
        except ExportError as exc:
            return _fail(str(exc))
    for line in summary.lines():
        print(line, file=sys.stderr)
    if args.push_to_hub:
        with tempfile.TemporaryDirectory(prefix="corral-hub-") as folder:
            staged = stage(out, summary, filters, model_notes(args.config), Path(folder))
            rows = counted(summary.rows, "row")
            print(f"Uploading {rows} and a dataset card to {args.push_to_hub} …", file=sys.stderr)
            print(upload(staged, args.push_to_hub, private=args.private, token=token), file=sys.stderr)
    return 0


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
