"""Writing rows to JSON Lines or Parquet a batch at a time, into a partial file renamed into place at the end."""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Protocol

import orjson

SUFFIXES = (".jsonl", ".parquet")


class ExportError(Exception):
    """The export cannot be written as asked; the message is a sentence for the user."""


class RowWriter(Protocol):
    """Where rows go."""

    def write(self, rows: list[dict[str, Any]]) -> None:
        """Append rows."""

    def commit(self) -> None:
        """Finish the file and move it into place."""

    def abort(self) -> None:
        """Drop the partial file."""


def _partial(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial-{os.getpid()}")


class JsonlWriter:
    """One compact JSON object a line, UTF-8 (non-ASCII kept as is)."""

    def __init__(self, path: Path) -> None:
        self._path, self._tmp = path, _partial(path)
        self._file: IO[bytes] = self._tmp.open("wb", buffering=1 << 20)

    def write(self, rows: list[dict[str, Any]]) -> None:
        """Append rows."""
        dumps = orjson.dumps
        self._file.write(b"".join(dumps(row) + b"\n" for row in rows))

    def commit(self) -> None:
        """Flush, sync and rename into place."""
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._tmp.replace(self._path)

    def abort(self) -> None:
        """Drop the partial file."""
        self._file.close()
        self._tmp.unlink(missing_ok=True)


def _schema(fmt: str, margin: bool) -> Any:
    import pyarrow as pa

    msgs = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
    meta = [
        ("turn", pa.int32()),
        ("language", pa.string()),
        ("self_play", pa.bool_()),
        ("anonymous", pa.bool_()),
        ("stopped", pa.bool_()),
        ("judge", pa.string()),
        ("voted_at", pa.string()),
    ]
    pair = [("model_chosen", pa.string()), ("model_rejected", pa.string()), ("battle_id", pa.string())]
    if fmt == "dpo":
        return pa.schema([("prompt", msgs), ("chosen", msgs), ("rejected", msgs), *pair, *meta])
    if fmt == "reward":
        extra = [("margin", pa.float64())] if margin else []
        return pa.schema([("chosen", msgs), ("rejected", msgs), *extra, *pair, *meta])
    if fmt == "kto":
        head = [("prompt", msgs), ("completion", msgs), ("label", pa.bool_())]
        return pa.schema([*head, ("model", pa.string()), ("source", pa.string()), ("id", pa.string()), *meta])
    if fmt == "lmsys":
        return pa.schema(
            [
                ("question_id", pa.string()),
                ("model_a", pa.string()),
                ("model_b", pa.string()),
                ("winner", pa.string()),
                ("judge", pa.string()),
                ("conversation_a", msgs),
                ("conversation_b", msgs),
                ("turn", pa.int32()),
                ("anony", pa.bool_()),
                ("language", pa.string()),
                ("tstamp", pa.float64()),
            ]
        )
    raise ExportError(f"The {fmt} format is written as JSON Lines only; use a .jsonl file name.")


class ParquetWriter:
    """A Parquet file with a fixed schema per format, one row group per batch."""

    def __init__(self, path: Path, fmt: str, *, margin: bool = False) -> None:
        import pyarrow.parquet as pq

        self._schema = _schema(fmt, margin)
        self._path, self._tmp = path, _partial(path)
        self._writer = pq.ParquetWriter(self._tmp, self._schema, compression="zstd")

    def write(self, rows: list[dict[str, Any]]) -> None:
        """Append rows as one row group."""
        import pyarrow as pa

        if rows:
            self._writer.write_table(pa.Table.from_pylist(rows, schema=self._schema))

    def commit(self) -> None:
        """Close and rename into place."""
        self._writer.close()
        self._tmp.replace(self._path)

    def abort(self) -> None:
        """Drop the partial file."""
        self._writer.close()
        self._tmp.unlink(missing_ok=True)


def check_target(path: Path, fmt: str) -> None:
    """Refuse, with a sentence, a file name whose type is unknown or unsuited to `fmt`, or a missing folder."""
    if path.suffix not in SUFFIXES:
        raise ExportError(f"Cannot tell the file type of {path.name}: name it .jsonl or .parquet.")
    if path.suffix == ".parquet" and fmt == "raw":
        raise ExportError("The raw format is written as JSON Lines only; use a .jsonl file name.")
    if not path.parent.is_dir():
        raise ExportError(f"The folder {path.parent} does not exist.")


def open_writer(path: Path, fmt: str, *, margin: bool = False) -> RowWriter:
    """A writer for `path`, chosen by its suffix; refuses unknown suffixes and missing folders with a sentence."""
    check_target(path, fmt)
    if path.suffix == ".parquet":
        return ParquetWriter(path, fmt, margin=margin)
    return JsonlWriter(path)


class Writing:
    """`with Writing(writer):` commits on success and drops the partial file on any failure."""

    def __init__(self, writer: RowWriter) -> None:
        self.writer = writer

    def __enter__(self) -> RowWriter:
        return self.writer

    def __exit__(self, kind: type[BaseException] | None, _exc: BaseException | None, _tb: TracebackType | None) -> None:
        if kind is None:
            self.writer.commit()
        else:
            self.writer.abort()
