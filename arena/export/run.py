"""One export: read votes in batches, shape them, drop duplicates, write, and count what happened."""

from __future__ import annotations

import gc
import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from arena.domain import VoteFilter
from arena.export import formats
from arena.export.dedup import SeenSet, digest
from arena.export.formats import ExportFormat, Judges, Shaped, Shaping, Skip
from arena.export.formats.base import Row
from arena.export.writers import Writing, open_writer
from arena.store.export_source import ExportSource, LeftOut

BATCH_ROWS = 256  # shaped items per write: small, so a batch of long conversations stays small in memory
# what every export entry point starts from: the leaderboard's defaults (anonymous votes without an identity leak,
# no self-play); --include-named, --include-leaks and --include-self-play widen it
EXPORT_FILTER = VoteFilter()
# the summary's sentence for the votes each vote filter keeps out, in the order a vote out for several reasons is
# counted (named before leaked before self-play)
LEFT_OUT: dict[str, str] = {
    LeftOut.NAMED: "cast with the names visible (add --include-named)",
    LeftOut.LEAK: "an answer revealed a model's identity (add --include-leaks)",
    LeftOut.SELF_PLAY: "a model played itself (add --include-self-play)",
}


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


def excluded_counts(source: ExportSource, filters: VoteFilter) -> dict[str, int]:
    """How many votes the filters kept out, by reason (read in the export's own pass over the votes)."""
    kept_out = {
        LeftOut.NAMED: not filters.include_named,
        LeftOut.LEAK: not filters.include_leaks,
        LeftOut.SELF_PLAY: not filters.include_self_play,
    }
    return {sentence: source.left_out[key] for key, sentence in LEFT_OUT.items() if kept_out[key]}


def _shaped(fmt: ExportFormat, source: ExportSource, filters: VoteFilter, shaping: Shaping) -> Iterator[Shaped]:
    return itertools.chain.from_iterable(reading.shaped(source, filters, shaping) for reading in fmt.reads)


def export(
    engine: Engine,
    fmt: str,
    path: Path,
    filters: VoteFilter,
    *,
    judges: Judges,
    strengths: Mapping[str, float] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Summary:
    """Write `fmt` rows for the votes passing `filters` to `path` (.jsonl or .parquet); the file appears whole or not.

    Memory stays nearly flat: votes are read, shaped and written a batch at a time; de-duplication keeps 8 bytes
    per distinct row (dedup.SeenSet).
    """
    spec = formats.get(fmt)
    started = time.perf_counter()
    source = ExportSource(engine)
    summary = Summary(format=fmt, path=path)
    shaping = Shaping(judges, strengths)
    writer = open_writer(path, spec, shaping)
    seen = SeenSet() if spec.dedup else None
    rare_collections = _RareCollections()

    def flush(rows: list[Row], read: int) -> None:
        if seen is not None and rows:
            rows = _fresh(seen, spec.dedup, rows, summary)
        writer.write(rows)
        _tally(summary, spec, rows)
        summary.read += read
        if progress is not None:
            progress(read)

    with Writing(writer), rare_collections:
        rows: list[Row] = []
        read = 0
        for shaped in _shaped(spec, source, filters, shaping):
            read += 1
            if shaped.skipped:
                summary.skipped[shaped.skipped] += 1
            rows += shaped.rows
            if read >= BATCH_ROWS:
                flush(rows, read)
                rows, read = [], 0
        flush(rows, read)
    if spec.counts_left_out:
        summary.excluded = excluded_counts(source, filters)
    summary.seconds = time.perf_counter() - started
    return summary


class _RareCollections:
    """Python's cyclic garbage collector run a hundred times less often while exports run.

    An export allocates millions of short-lived dicts and lists, none in a reference cycle, and each 700 of them
    start a collection that walks the young objects (and now and then every object of the process): a quarter of
    an export's time, measured. The threshold is process-wide, so the first export running raises it and the last
    one to finish puts it back.
    """

    _lock = threading.Lock()
    _running = 0
    _saved: tuple[int, int, int] = (0, 0, 0)

    def __enter__(self) -> None:
        cls = type(self)
        with cls._lock:
            if cls._running == 0:
                cls._saved = gc.get_threshold()
                gc.set_threshold(max(cls._saved[0], 70_000), *cls._saved[1:])
            cls._running += 1

    def __exit__(self, *_exc: object) -> None:
        cls = type(self)
        with cls._lock:
            cls._running -= 1
            if cls._running == 0:
                gc.set_threshold(*cls._saved)


def _fresh(seen: SeenSet, fields: tuple[str, ...], rows: list[Row], summary: Summary) -> list[Row]:
    """The rows whose `fields` were not written before; the others are counted as duplicates."""
    fresh = seen.add_new([digest(tuple(row[name] for name in fields)) for row in rows])
    if dropped := fresh.count(False):  # no zero entries: the summary and the card list every key
        summary.skipped[Skip.DUPLICATE] += dropped
    return [row for row, new in zip(rows, fresh, strict=True) if new]


def _tally(summary: Summary, fmt: ExportFormat, rows: list[Row]) -> None:
    """Count rows per model and language, and widen the date range."""
    if not rows:
        return
    summary.rows += len(rows)
    summary.models.update(model for row in rows for model in fmt.models(row))
    summary.languages.update(r["language"] or "unknown" for r in rows)
    moments = [fmt.moment(row) for row in rows]
    first, last = min(moments), max(moments)
    summary.first = min(first, summary.first) if summary.first else first
    summary.last = max(last, summary.last) if summary.last else last


def leaderboard_strengths(engine: Engine, filters: VoteFilter) -> dict[str, float]:
    """Each model's Bradley–Terry strength in natural-log odds, from the votes the export's filters admit."""
    import math

    from arena.ratings import fit_bradley_terry, outcome_counts
    from arena.store.repository import Repository

    # the whole board: not narrowed to the judged round's depth, nor (as before) to a language or a category
    rows = Repository(engine).pair_outcomes(replace(filters, languages=None, category=None, min_turns=1))
    ratings = fit_bradley_terry(outcome_counts(rows))
    return {model: (rating - 1000.0) * math.log(10) / 400.0 for model, rating in ratings.items()}
