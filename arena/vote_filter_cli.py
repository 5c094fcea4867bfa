"""The vote-filter flags `leaderboard`, `audit` and `export` share: one spelling, on the command line, of which
votes count."""

from __future__ import annotations

import argparse
from dataclasses import replace
from datetime import date

from arena.categories import BY_NAME, CATEGORIES
from arena.domain import VoteFilter, check_voters


def language(value: str) -> str:
    """A language name ("French") or ISO 639-1 code ("fr") → the stored name."""
    if len(value) == 2:
        from lingua import IsoCode639_1, Language

        try:
            return Language.from_iso_code_639_1(getattr(IsoCode639_1, value.upper())).name.capitalize()
        except AttributeError:
            raise argparse.ArgumentTypeError(f"unknown language code '{value}'") from None
    return value.capitalize()


def _voters(value: str) -> str:
    try:
        return check_voters(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_vote_filter_arguments(p: argparse.ArgumentParser) -> None:
    """Add the flags that choose votes: days, models, languages, a category, and the kinds of vote left out by
    default."""
    p.add_argument("--since", type=date.fromisoformat, help="first UTC day (YYYY-MM-DD), inclusive")
    p.add_argument("--until", type=date.fromisoformat, help="last UTC day (YYYY-MM-DD), exclusive")
    p.add_argument("--model", action="append", help="only battles between these models (repeatable)")
    p.add_argument(
        "--language",
        action="append",
        type=language,
        help="only these languages (repeatable; a name or code: French, fr)",
    )
    p.add_argument(
        "--category",
        choices=list(BY_NAME),
        help="only votes on questions of this category ("
        + "; ".join(f"{c.name}: {c.explain}" for c in CATEGORIES)
        + ")",
    )
    p.add_argument(
        "--voters",
        type=_voters,
        default="human",
        help="whose votes: human (default), judge:NAME (one AI judge), judges (every AI judge) or all",
    )
    p.add_argument("--include-named", action="store_true", help="also votes cast with the model names visible")
    p.add_argument("--include-leaks", action="store_true", help="also votes on rounds that revealed a model's name")
    p.add_argument("--include-self-play", action="store_true", help="also self-play battles (a model against itself)")


def vote_filter(args: argparse.Namespace, base: VoteFilter = VoteFilter()) -> VoteFilter:
    """`base` narrowed or widened by the flags of `add_vote_filter_arguments`."""
    return replace(
        base,
        since=args.since,
        until=args.until,
        models=tuple(args.model) if args.model else None,
        languages=tuple(args.language) if args.language else None,
        category=args.category,
        voters=args.voters,
        include_named=args.include_named,
        include_leaks=args.include_leaks,
        include_self_play=args.include_self_play,
    )
