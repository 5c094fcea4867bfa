"""`python -m arena …`: the arena's command-line tools (the only code here that reads argv and the environment)."""

from __future__ import annotations

import argparse
import csv
import gc
import io
import json
import os
import sys
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from arena.autobattle_cli import HELP as AUTOBATTLE_HELP
from arena.autobattle_cli import add_autobattle_arguments
from arena.export.cli import HELP as EXPORT_HELP
from arena.export.cli import add_export_arguments
from arena.maintenance_cli import BACKUP_HELP, PRUNE_HELP, add_backup_arguments, add_prune_arguments
from arena.settings import Settings
from arena.vote_filter_cli import add_vote_filter_arguments, vote_filter

if TYPE_CHECKING:
    from arena.leaderboard import Leaderboard, Standing
    from arena.store.repository import Repository
    from arena.style_board import StyleBoard


def _leaderboard_arguments(p: argparse.ArgumentParser, settings: Settings) -> None:
    """Give the leaderboard sub-command its arguments (the rating methods, and numpy with them, are imported here)."""
    from arena.rating_methods import DEFAULT_METHOD, RATING_METHODS

    p.add_argument("--db", default=settings.db_url, help="SQLAlchemy URL")
    add_vote_filter_arguments(p)
    p.add_argument("--rounds", type=int, default=1000, help="bootstrap rounds")
    p.add_argument(
        "--intervals",
        choices=["bootstrap", "sandwich"],
        default="bootstrap",
        help="95%% intervals by bootstrap resampling or from the sandwich (robust) covariance",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--method", choices=list(RATING_METHODS), default=DEFAULT_METHOD, help="rating method")
    p.add_argument("--style", action="store_true", help="also the ratings with answer length and markdown held equal")
    p.add_argument("--format", choices=["table", "json", "csv"], default="table")
    p.set_defaults(run=_leaderboard)


def _repository(db: str) -> Repository | None:
    """The repository on an up-to-date database, or None (and a sentence) when there is no database there."""
    from sqlalchemy.engine import make_url

    from arena.store.engine import make_engine
    from arena.store.migrate import upgrade
    from arena.store.repository import Repository

    url = make_url(db)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        print(f"arena: no database at {url.database} (give --db or DATABASE_URL)", file=sys.stderr)
        return None
    engine = make_engine(db)
    upgrade(engine)  # a report on an older database needs its newer tables (vote counts)
    return Repository(engine)


def _leaderboard(args: argparse.Namespace) -> int:
    from arena.leaderboard import LeaderboardService
    from arena.rating_methods import rating_method

    if args.style and args.format == "csv":
        print("arena: the style-controlled board is shown in the table and json formats, not csv", file=sys.stderr)
        return 2
    if args.intervals == "sandwich" and args.method == "elo":
        print("arena: the elo method has bootstrap intervals only (no likelihood for sandwich ones)", file=sys.stderr)
        return 2
    repo = _repository(args.db)
    if repo is None:
        return 2
    service = LeaderboardService(repo, method=rating_method(args.method), intervals=args.intervals)
    board = service.compute(vote_filter(args), rounds=args.rounds, seed=args.seed)
    rows = [_row(s) for s in board.standings]
    scope = _scope(args)
    style = service.style_board(vote_filter(args)) if args.style else None
    if args.format == "json":
        extra = {} if style is None else {"style_controlled": _style_json(style)}
        meta = {**_meta(board, args.method), "category": args.category, "languages": args.language}
        meta["voters"] = args.voters
        print(json.dumps({**meta, "standings": rows, **extra}, indent=2))
    elif args.format == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else ["rank", "model"])
        writer.writeheader()
        writer.writerows(rows)
        print(out.getvalue(), end="")
    else:
        _print_table(board, rows, scope)
        if style is not None:
            _print_style(style)
    return 0


def _style_json(style: StyleBoard) -> dict[str, Any]:
    standings = [
        {
            "rank": s.rank,
            "model": s.model,
            "rating": round(s.rating, 1),
            "lower": round(s.lower, 1),
            "upper": round(s.upper, 1),
            "votes": s.votes,
        }
        for s in style.standings
    ]
    effects = [
        {
            "feature": e.feature,
            "points": round(e.points, 1),
            "lower": round(e.lower, 1),
            "upper": round(e.upper, 1),
            "sentence": e.sentence,
        }
        for e in style.effects
    ]
    return {"votes": style.votes, "standings": standings, "effects": effects}


def _print_style(style: StyleBoard) -> None:
    from arena.audit import counted

    print(f"\nWith answer length and markdown held equal ({counted(style.votes, 'vote')} with style):")
    print(f"{'rank':>4}  {'model':<32} {'rating':>7}  {'95% interval':>15}  {'votes':>8}")
    for s in style.standings:
        interval = f"{s.lower:.0f} – {s.upper:.0f}"
        print(f"{s.rank:>4}  {s.model:<32} {s.rating:>7.0f}  {interval:>15}  {s.votes:>8}")
    for e in style.effects:
        print(f"  {e.sentence}")


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
        "rounds": board.rounds if board.intervals == "bootstrap" else None,
        "intervals": board.intervals,
        "method": method,
        "computed_at": board.computed_at.isoformat(),
        "db_seconds": round(board.db_seconds, 4),
        "fit_seconds": round(board.fit_seconds, 4),
    }


def _scope(args: argparse.Namespace) -> str:
    """Which questions' votes a board counts, as its table says it: "coding questions in French", or ""."""
    from arena.categories import BY_NAME

    what = BY_NAME[args.category].questions if args.category else ""
    where = f"in {', '.join(args.language)}" if args.language else ""
    who = {"human": "", "all": "by people and AI judges", "judges": "by AI judges"}.get(
        args.voters, f"by {args.voters}"
    )
    return " ".join(part for part in (what or ("questions" if where or who else ""), where, who) if part)


def _print_table(board: Leaderboard, rows: list[dict[str, Any]], scope: str = "") -> None:
    print(f"{'rank':>4}  {'model':<32} {'rating':>7}  {'95% interval':>15}  {'votes':>8}  {'win rate':>8}")
    for r in rows:
        interval = "" if r["lower"] is None else f"{r['lower']:.0f} – {r['upper']:.0f}"
        rating = "" if r["rating"] is None else f"{r['rating']:.0f}"
        rate = "" if r["win_rate"] is None else f"{100 * r['win_rate']:.1f}%"
        rank = "" if r["rank"] is None else str(r["rank"])
        print(f"{rank:>4}  {r['model']:<32} {rating:>7}  {interval:>15}  {r['votes']:>8}  {rate:>8}")
    print(
        f"\n{board.votes:,} votes{' on ' + scope if scope else ''}, {board.intervals_taken}, "
        f"{board.db_seconds + board.fit_seconds:.2f} s (database {board.db_seconds:.2f} s)",
        file=sys.stderr,
    )


def _audit_arguments(p: argparse.ArgumentParser, settings: Settings) -> None:
    """Give the audit sub-command its arguments."""
    p.add_argument("--db", default=settings.db_url, help="SQLAlchemy URL")
    add_vote_filter_arguments(p)
    p.add_argument("--rounds", type=int, default=1000, help="bootstrap rounds for rank stability")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(run=_audit)


def _audit(args: argparse.Namespace) -> int:
    from arena.audit import BARS, QUIET, audit, counted

    repo = _repository(args.db)
    if repo is None:
        return 2
    report = audit(repo.voter_outcomes(vote_filter(args)), rounds=args.rounds, seed=args.seed)
    if args.format == "json":
        findings = [{"check": f.check, "sentence": f.sentence} for f in report.findings]
        data = {"votes": report.votes, "voters": report.voters, "models": report.models, "findings": findings}
        print(json.dumps({**data, "stability": report.stability, "bars": BARS}, indent=2, ensure_ascii=False))
        return 0
    who = f"{counted(report.votes, 'vote')} from {counted(report.voters, 'voter')}"
    print(f"Audit of {who} on {counted(len(report.models), 'model')}.\n")
    for finding in report.findings:
        print(f"- {finding.sentence}")
    if not report.findings:
        print(QUIET)
    print("\nWhat each check looks for, and when it speaks:")
    for check, bar in BARS.items():
        print(f"  {check}: {bar}")
    return 0


def _judges_arguments(p: argparse.ArgumentParser, settings: Settings) -> None:
    """Give the judges sub-command its arguments."""
    p.add_argument("--db", default=settings.db_url, help="SQLAlchemy URL")
    add_vote_filter_arguments(p)
    p.add_argument("--config", type=Path, help="the arena's YAML config: its judges' families (self-preference)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(run=_judges)


def _judges(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from arena.agreement import judge_agreement
    from arena.config import ConfigError, load_config

    families: dict[str, list[str]] = {}
    if args.config is not None:
        try:
            families = {j.name: j.family for j in load_config(args.config).judges}
        except ConfigError as exc:
            print(f"arena: {exc}", file=sys.stderr)
            return 2
    repo = _repository(args.db)
    if repo is None:
        return 2
    f = vote_filter(args)
    reports = judge_agreement(repo.paired_verdicts(f), repo.judge_readings(f), families, seed=args.seed)
    if args.format == "json":
        print(json.dumps(_finite([asdict(r) for r in reports]), indent=2, ensure_ascii=False))
        return 0
    if not reports:
        print("No AI judge has judged a round yet (see `python -m arena autobattle`).")
    for report in reports:
        print(f"{report.judge}:")
        for sentence in report.sentences:
            print(f"  - {sentence}")
        for title, slices in (("per model pair", report.by_pair), ("per language", report.by_language)):
            for b in slices:
                print(f"  {title}: {b.sentence}")
    return 0


def _finite(value: Any) -> Any:
    """`value` with NaN (an undefined kappa or share) as null: JSON has no NaN."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


@dataclass(frozen=True)
class SubCommand:
    """One sub-command: its line in the overview and what gives it its arguments (importing what it alone needs)."""

    help: str
    arguments: Callable[[argparse.ArgumentParser, Settings], None]


SUBCOMMANDS: dict[str, SubCommand] = {
    "leaderboard": SubCommand(
        "ratings (Bradley–Terry by default) with 95%% intervals (bootstrap or sandwich)", _leaderboard_arguments
    ),
    "audit": SubCommand(
        "whether the votes support the leaderboard: biases, cycles, heavy voters, stability", _audit_arguments
    ),
    "judges": SubCommand(
        "how far each AI judge agrees with people, flips with the order, favours its kin", _judges_arguments
    ),
    "export": SubCommand(EXPORT_HELP, add_export_arguments),
    "autobattle": SubCommand(AUTOBATTLE_HELP, add_autobattle_arguments),
    "prune": SubCommand(PRUNE_HELP, add_prune_arguments),
    "backup": SubCommand(BACKUP_HELP, add_backup_arguments),
}


def parser(settings: Settings | None = None, *, commands: Collection[str] | None = None) -> argparse.ArgumentParser:
    """The command line; database defaults come from the environment's settings (DATABASE_URL, CORRAL_DATA_DIR).

    Only the sub-commands in `commands` (default: all) get their arguments, so that running one does not pay
    the imports of the others (the export formats, the rating methods).
    """
    settings = settings or Settings()
    p = argparse.ArgumentParser(prog="python -m arena", description="Corral's arena tools.")
    sub = p.add_subparsers(dest="command", required=True)
    for name, command in SUBCOMMANDS.items():
        sp = sub.add_parser(name, help=command.help)
        if commands is None or name in commands:
            command.arguments(sp, settings)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run one sub-command."""
    argv = sys.argv[1:] if argv is None else list(argv)
    named = next((arg for arg in argv if not arg.startswith("-")), None)  # the top level has no other options
    args = parser(Settings.from_env(os.environ), commands=[named] if named else []).parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    code = main()
    # The process ends here. One collection closes what the command left to the collector (a database connection:
    # SQLite checkpoints its WAL on the last close); freezing the rest then spares the interpreter tearing down
    # every imported module's cycles at exit, about a tenth of a leaderboard's run. atexit handlers still run.
    gc.collect()
    gc.freeze()
    raise SystemExit(code)
