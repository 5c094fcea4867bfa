"""`python -m arena …`: the arena's command-line tools (the only code here that reads argv and the environment)."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from arena.domain import VoteFilter
from arena.export.cli import add_export_parser
from arena.maintenance_cli import add_maintenance_parsers
from arena.settings import Settings

if TYPE_CHECKING:
    from arena.leaderboard import Leaderboard, Standing


def _language(value: str) -> str:
    """A language name ("French") or ISO 639-1 code ("fr") → the stored name."""
    if len(value) == 2:
        from lingua import IsoCode639_1, Language

        try:
            return Language.from_iso_code_639_1(getattr(IsoCode639_1, value.upper())).name.capitalize()
        except AttributeError:
            raise argparse.ArgumentTypeError(f"unknown language code '{value}'") from None
    return value.capitalize()


def _leaderboard(args: argparse.Namespace) -> int:
    from sqlalchemy.engine import make_url

    from arena.leaderboard import LeaderboardService
    from arena.rating_methods import rating_method
    from arena.store.engine import make_engine
    from arena.store.migrate import upgrade
    from arena.store.repository import Repository

    url = make_url(args.db)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        print(f"arena: no database at {url.database} (give --db or DATABASE_URL)", file=sys.stderr)
        return 2
    engine = make_engine(args.db)
    upgrade(engine)  # a report on an older database needs its newer tables (vote counts)
    service = LeaderboardService(Repository(engine), method=rating_method(args.method))
    filters = VoteFilter(
        languages=None if args.language is None else [args.language],
        since=args.since,
        until=args.until,
        models=tuple(args.model) if args.model else None,
        include_named=args.include_named,
        include_leaks=args.include_leaks,
        include_self_play=args.include_self_play,
    )
    board = service.compute(filters, rounds=args.rounds, seed=args.seed)
    rows = [_row(s) for s in board.standings]
    if args.format == "json":
        print(json.dumps({**_meta(board, args.method), "standings": rows}, indent=2))
    elif args.format == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else ["rank", "model"])
        writer.writeheader()
        writer.writerows(rows)
        print(out.getvalue(), end="")
    else:
        _print_table(board, rows)
    return 0


def _row(s: Standing) -> dict[str, Any]:
    """One standing as the CLI prints it (ratings to a tenth of a point)."""
    return {
        "rank": s.rank,
        "model": s.model,
        "rating": None if s.rating is None else round(s.rating, 1),
        "lower": None if s.lower is None else round(s.lower, 1),
        "upper": None if s.upper is None else round(s.upper, 1),
        "votes": s.votes,
        "win_rate": None if s.win_rate is None else round(s.win_rate, 4),
    }


def _meta(board: Leaderboard, method: str) -> dict[str, Any]:
    return {
        "votes": board.votes,
        "rounds": board.rounds,
        "method": method,
        "computed_at": board.computed_at.isoformat(),
        "db_seconds": round(board.db_seconds, 4),
        "fit_seconds": round(board.fit_seconds, 4),
    }


def _print_table(board: Leaderboard, rows: list[dict[str, Any]]) -> None:
    print(f"{'rank':>4}  {'model':<32} {'rating':>7}  {'95% interval':>15}  {'votes':>8}  {'win rate':>8}")
    for r in rows:
        interval = "" if r["lower"] is None else f"{r['lower']:.0f} – {r['upper']:.0f}"
        rating = "" if r["rating"] is None else f"{r['rating']:.0f}"
        rate = "" if r["win_rate"] is None else f"{100 * r['win_rate']:.1f}%"
        rank = "" if r["rank"] is None else str(r["rank"])
        print(f"{rank:>4}  {r['model']:<32} {rating:>7}  {interval:>15}  {r['votes']:>8}  {rate:>8}")
    print(
        f"\n{board.votes:,} votes, {board.rounds} bootstrap rounds, "
        f"{board.db_seconds + board.fit_seconds:.2f} s (database {board.db_seconds:.2f} s)",
        file=sys.stderr,
    )


def parser(settings: Settings | None = None) -> argparse.ArgumentParser:
    """The command line; database defaults come from the environment's settings (DATABASE_URL, CORRAL_DATA_DIR)."""
    from arena.rating_methods import DEFAULT_METHOD, RATING_METHODS

    settings = settings or Settings()
    db = settings.db_url
    p = argparse.ArgumentParser(prog="python -m arena", description="Corral's arena tools.")
    sub = p.add_subparsers(dest="command", required=True)
    lb = sub.add_parser("leaderboard", help="ratings (Bradley–Terry by default) with bootstrap 95%% intervals")
    lb.add_argument("--db", default=db, help="SQLAlchemy URL")
    lb.add_argument("--language", type=_language, help="a language name or ISO 639-1 code, e.g. French or fr")
    lb.add_argument("--since", type=date.fromisoformat, help="first UTC day (YYYY-MM-DD), inclusive")
    lb.add_argument("--until", type=date.fromisoformat, help="last UTC day (YYYY-MM-DD), exclusive")
    lb.add_argument("--model", action="append", help="only battles between these models (repeatable)")
    lb.add_argument("--rounds", type=int, default=1000, help="bootstrap rounds")
    lb.add_argument("--seed", type=int, default=0)
    lb.add_argument("--method", choices=list(RATING_METHODS), default=DEFAULT_METHOD, help="rating method")
    lb.add_argument("--format", choices=["table", "json", "csv"], default="table")
    lb.add_argument("--include-named", action="store_true", help="count votes cast with the names visible")
    lb.add_argument("--include-leaks", action="store_true", help="count votes on battles with an identity leak")
    lb.add_argument("--include-self-play", action="store_true", help="count self-play battles")
    lb.set_defaults(run=_leaderboard)
    add_export_parser(sub, settings=settings, language=_language)
    add_maintenance_parsers(sub, default_db=db)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run one sub-command."""
    args = parser(Settings.from_env(os.environ)).parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
