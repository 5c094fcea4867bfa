"""One export: read votes in batches, shape them, drop duplicates, write, and count what happened."""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from arena.export import formats
from arena.export.dedup import SeenSet, digest
from arena.export.formats import Judges, Shaped, Skip
from arena.export.writers import ExportError, Writing, open_writer
from arena.store.export_source import ExportFilters, ExportSource

BATCH_ROWS = 2000


@dataclass
class Summary:
    """What an export wrote and what it left out, and why."""

    format: str
    path: Path
    rows: int = 0
    read: int = 0  # votes (plus chat ratings for kto, or battles and chats for raw) read
    skipped: Counter[str] = field(default_factory=Counter)
    excluded: dict[str, int] = field(default_factory=dict)  # votes the filters left out by default, by reason
    models: Counter[str] = field(default_factory=Counter)  # rows per model
    languages: Counter[str] = field(default_factory=Counter)
    first: datetime | None = None
    last: datetime | None = None
    seconds: float = 0.0

    def lines(self, *, with_path: bool = True) -> list[str]:
        """The summary as sentences for a terminal, or for the UI (without the server's file path); no zero counts."""
        where = f" to {self.path}" if with_path else ""
        wrote = f"Wrote {counted(self.rows, f'{self.format} row')}{where}"
        out = [f"{wrote} from {counted(self.read, 'record')} in {self.seconds:.1f} s."]
        out += [skipped_line(reason, n) for reason, n in sorted(self.skipped.items()) if n]
        out += [f"{counted(n, 'vote')} left out: {reason}." for reason, n in self.excluded.items() if n]
        return out


# how the summary names what each formats.Skip reason drops: one, many, and why (if the noun does not say it)
SKIPPED: dict[str, tuple[str, str, str]] = {
    Skip.TIE: ("tie", "ties", "not a preference"),
    Skip.BOTH_BAD: ("both-bad vote", "both-bad votes", "not a preference"),
    Skip.EMPTY: ("vote with an empty answer", "votes with an empty answer", ""),
    Skip.DUPLICATE: ("duplicate row", "duplicate rows", ""),
}


def counted(n: int, one: str, many: str = "") -> str:
    """`n` things in words: "1 row", "2 rows", "1,200 rows" (`many` for plurals that are not one + "s")."""
    return f"{n:,} {one if n == 1 else many or one + 's'}"


def skipped_line(reason: str, n: int) -> str:
    """One summary sentence for `n` records skipped for `reason` ("1 tie skipped (not a preference).")."""
    if reason not in SKIPPED:
        return f"{counted(n, 'record')} skipped: {reason}."
    one, many, why = SKIPPED[reason]
    return f"{counted(n, one, many)} skipped" + (f" ({why})." if why else ".")


def excluded_counts(source: ExportSource, filters: ExportFilters) -> dict[str, int]:
    """How many votes the default filters keep out, by reason; a vote both named and leaked counts as named."""
    kept = source.count_votes(filters)
    with_leaks = source.count_votes(replace(filters, include_leaks=True))
    out: dict[str, int] = {}
    if not filters.include_named:
        everything = source.count_votes(replace(filters, include_named=True, include_leaks=True))
        out["cast with the names visible (add --include-named)"] = everything - with_leaks
    if not filters.include_leaks:
        out["an answer revealed a model's identity (add --include-leaks)"] = with_leaks - kept
    return out


def _shaped(
    fmt: str, source: ExportSource, filters: ExportFilters, judges: Judges, strengths: Mapping[str, float] | None
) -> Iterator[Shaped]:
    if fmt == "raw":
        yield from (formats.raw(record, judges) for record in source.raw_records(filters))
        return
    shape: Callable[[Any], Shaped] = {
        "dpo": lambda v: formats.dpo(v, judges),
        "kto": lambda v: formats.kto(v, judges),
        "reward": lambda v: formats.reward(v, judges, strengths),
        "lmsys": lambda v: formats.lmsys(v, judges),
    }[fmt]
    yield from (shape(vote) for vote in source.judged_rounds(filters))
    if fmt == "kto":
        yield from (formats.kto_feedback(rated, judges) for rated in source.rated_answers(filters))


def _batches(items: Iterable[Shaped], size: int) -> Iterator[list[Shaped]]:
    batch: list[Shaped] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def export(
    engine: Engine,
    fmt: str,
    path: Path,
    filters: ExportFilters,
    *,
    judges: Judges,
    strengths: Mapping[str, float] | None = None,
    progress: Callable[[int], None] | None = None,
    scratch: Path | None = None,
) -> Summary:
    """Write `fmt` rows for the votes passing `filters` to `path` (.jsonl or .parquet); the file appears whole or not.

    Memory stays flat: votes are read, shaped and written a batch at a time, and de-duplication remembers row
    fingerprints in a scratch SQLite file rather than in memory.
    """
    if fmt not in formats.FORMATS:
        raise ExportError(f"Unknown format {fmt!r}: choose one of {', '.join(formats.FORMATS)}.")
    started = time.perf_counter()
    source = ExportSource(engine)
    summary = Summary(format=fmt, path=path)
    if fmt != "raw":
        summary.excluded = excluded_counts(source, filters)
    writer = open_writer(path, fmt, margin=strengths is not None)
    fields = formats.TRAINING_FIELDS.get(fmt)  # LMSYS and raw records are votes and battles: never merged
    with Writing(writer), SeenSet(scratch) if fields else contextlib.nullcontext() as seen:
        for batch in _batches(_shaped(fmt, source, filters, judges, strengths), BATCH_ROWS):
            rows: list[dict[str, Any]] = []
            for shaped in batch:
                if shaped.skipped:
                    summary.skipped[shaped.skipped] += 1
                rows.extend(shaped.rows)
            if fields and seen is not None and rows:
                fresh = seen.add_new([digest(formats.dedup_key(fields, row)) for row in rows])
                if dropped := fresh.count(False):  # no zero entries: the summary and the card list every key
                    summary.skipped[Skip.DUPLICATE] += dropped
                rows = [row for row, new in zip(rows, fresh, strict=True) if new]
            writer.write(rows)
            _tally(summary, fmt, rows)
            summary.read += len(batch)
            if progress is not None:
                progress(len(batch))
    summary.seconds = time.perf_counter() - started
    return summary


def _tally(summary: Summary, fmt: str, rows: list[dict[str, Any]]) -> None:
    """Count rows per model and language, and widen the date range (ISO times in UTC compare as text)."""
    if not rows:
        return
    summary.rows += len(rows)
    if fmt in formats.PAIRED:  # a self-play row counts its model once
        models = [m for r in rows for m in {r["model_chosen"], r["model_rejected"]}]
    elif fmt == "kto":
        models = [r["model"] for r in rows]
    elif fmt == "lmsys":
        models = [m for r in rows for m in {r["model_a"], r["model_b"]}]
    else:
        models = [m for r in rows for m in set(r["models"].values())]
    summary.models.update(models)
    summary.languages.update(r["language"] or "unknown" for r in rows)
    if fmt == "lmsys":
        times = [datetime.fromtimestamp(min(r["tstamp"] for r in rows), UTC)]
        times.append(datetime.fromtimestamp(max(r["tstamp"] for r in rows), UTC))
    else:
        stamps = [r.get("voted_at") or r["started_at"] for r in rows]
        times = [datetime.fromisoformat(min(stamps)), datetime.fromisoformat(max(stamps))]
    summary.first = min(times[0], summary.first) if summary.first else times[0]
    summary.last = max(times[1], summary.last) if summary.last else times[1]


def leaderboard_strengths(engine: Engine, filters: ExportFilters) -> dict[str, float]:
    """Each model's Bradley–Terry strength in natural-log odds, from the votes the export's filters admit."""
    import math

    from arena.ratings import fit_bradley_terry, outcome_counts
    from arena.store.repository import Repository

    rows = Repository(engine).pair_outcomes(
        anonymous_only=not filters.include_named,
        include_leaks=filters.include_leaks,
        include_self_play=True,
        since=filters.since,
        until=filters.until,
        models=filters.models,
    )
    ratings = fit_bradley_terry(outcome_counts(rows))
    return {model: (rating - 1000.0) * math.log(10) / 400.0 for model, rating in ratings.items()}
