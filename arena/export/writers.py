"""Writing rows to JSON Lines or Parquet a batch at a time, into a partial file renamed into place at the end."""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Protocol

import orjson

if TYPE_CHECKING:  # the format records import this module (for ExportError): no import at run time
    from arena.export.formats.base import ExportFormat, Shaping

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


class _PartialFile:
    """A file written beside its target and renamed into place on commit, or dropped on abort."""

    def __init__(self, path: Path) -> None:
        self._path, self._tmp = path, _partial(path)

    def _close(self, *, keep: bool) -> None:
        raise NotImplementedError

    def commit(self) -> None:
        """Finish the file and move it into place."""
        self._close(keep=True)
        self._tmp.replace(self._path)

    def abort(self) -> None:
        """Drop the partial file."""
        self._close(keep=False)
        self._tmp.unlink(missing_ok=True)


class JsonlWriter(_PartialFile):
    """One compact JSON object a line, UTF-8 (non-ASCII kept as is)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._file: IO[bytes] = self._tmp.open("wb", buffering=1 << 20)

    def write(self, rows: list[dict[str, Any]]) -> None:
        """Append rows."""
        dumps, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE
        self._file.write(b"".join([dumps(row, option=newline) for row in rows]))

    def _close(self, *, keep: bool) -> None:
        if keep:  # on disk before the rename: a crash never leaves a renamed but empty file
            self._file.flush()
            os.fsync(self._file.fileno())
        self._file.close()


class ParquetWriter(_PartialFile):
    """A Parquet file with the format's fixed schema; rows are held as Arrow data (compact) until a row group of
    `ROW_GROUP_ROWS` rows or `ROW_GROUP_BYTES` is ready, so small write batches still make reader-friendly groups."""

    ROW_GROUP_ROWS = 8192
    ROW_GROUP_BYTES = 32 << 20

    def __init__(self, path: Path, schema: Any) -> None:
        import pyarrow.parquet as pq

        super().__init__(path)
        self._schema = schema
        self._writer = pq.ParquetWriter(self._tmp, self._schema, compression="zstd")
        self._pending: list[Any] = []  # Arrow tables not yet written
        self._rows = self._bytes = 0

    def write(self, rows: list[dict[str, Any]]) -> None:
        """Append rows (written out a row group at a time)."""
        import pyarrow as pa

        if not rows:
            return
        table = pa.Table.from_pylist(rows, schema=self._schema)
        self._pending.append(table)
        self._rows += table.num_rows
        self._bytes += table.nbytes
        if self._rows >= self.ROW_GROUP_ROWS or self._bytes >= self.ROW_GROUP_BYTES:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if self._pending:
            self._writer.write_table(pa.concat_tables(self._pending), row_group_size=self._rows)
        self._pending, self._rows, self._bytes = [], 0, 0

    def _close(self, *, keep: bool) -> None:
        if keep:
            self._flush()
        self._writer.close()


def check_target(path: Path, fmt: ExportFormat) -> None:
    """Refuse, with a sentence, a file name whose type is unknown or unsuited to `fmt`, or a missing folder."""
    if path.suffix not in SUFFIXES:
        raise ExportError(f"Cannot tell the file type of {path.name}: name it .jsonl or .parquet.")
    if path.suffix == ".parquet" and fmt.schema is None:
        raise ExportError(f"The {fmt.name} format is written as JSON Lines only; use a .jsonl file name.")
    if not path.parent.is_dir():
        raise ExportError(f"The folder {path.parent} does not exist.")


def open_writer(path: Path, fmt: ExportFormat, shaping: Shaping) -> RowWriter:
    """A writer for `path`, chosen by its suffix; refuses unknown suffixes and missing folders with a sentence."""
    check_target(path, fmt)
    if path.suffix == ".parquet" and fmt.schema is not None:
        return ParquetWriter(path, fmt.schema(shaping))
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
