"""XOR patches (the BELLE-LLaMA form): every released file is a model file XORed byte by byte with one base file.

Length rule: byte i of every file is XORed with byte (i mod len(base)) of the base file. Each file starts at the
base's first byte; the base starts over when a file is longer than it, and its extra bytes go unused when a file
is shorter. Outputs are exactly as long as inputs (an empty file stays empty), so the operation is its own inverse
and encrypting and decrypting are the same pass. An empty base file is an error.

For files no longer than the base this is the key stream of BELLE's decrypt.py (which XORs against the original
LLaMA consolidated.00.pth); past the end of the base that script starts over piece-wise in 10 MiB reads, which
agrees with the rule above only when the base size is a multiple of 10 MiB. Its sha256-prefixed `.enc` container
is not read here: integrity is checked with an md5 list instead (lines `md5  name`, as md5sum prints them).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from io import BufferedReader
from pathlib import Path
from typing import Any

import numpy as np

from backends.weights.errors import WeightsError
from backends.weights.progress import progress_bar
from backends.weights.staging import staged_output

CHUNK_SIZE = 8 * 1024 * 1024
ENCRYPTED_SUFFIX = ".enc"
_CHECKSUM_LINE = re.compile(r"^([0-9a-fA-F]{32}) [ *](.+)$")


@dataclass(frozen=True)
class XorReport:
    """What an XOR pass wrote: output file names and the md5 of each plain (decrypted-side) file."""

    out: Path
    files: list[str]
    plain_md5: dict[str, str]


def read_checksums(path: Path) -> dict[str, str]:
    """Parse an md5 list (`md5  name` or `md5 *name` per line, as md5sum prints) into name -> md5."""
    if not path.is_file():
        raise WeightsError(f"the checksum list {path} does not exist")
    result: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        match = _CHECKSUM_LINE.match(line.strip())
        if match is None:
            raise WeightsError(f"{path} line {number} is not an 'md5  filename' line: {line.strip()[:80]!r}")
        # md5sum prints the path it was given; the files are matched by name inside the folder.
        result[Path(match.group(2)).name] = match.group(1).lower()
    if not result:
        raise WeightsError(f"the checksum list {path} lists no files")
    return result


def format_checksums(md5s: dict[str, str]) -> str:
    """An md5 list in md5sum's format, sorted by name."""
    return "".join(f"{md5}  {name}\n" for name, md5 in sorted(md5s.items()))


def xor_files(
    src_dir: Path,
    base_file: Path,
    out_dir: Path,
    checksums: Path | None = None,
    *,
    encrypt: bool = False,
    force: bool = False,
    progress: bool = False,
    chunk_size: int = CHUNK_SIZE,
) -> XorReport:
    """XOR each file of `src_dir` with `base_file` into `out_dir`, streaming, checking plain files' md5s.

    Decrypting (the default) strips a trailing `.enc` from names and checks the outputs against `checksums`;
    encrypting adds `.enc` and checks the inputs. With a checksum list only the files it names are processed,
    otherwise every visible regular file of `src_dir`.
    """
    if not src_dir.is_dir():
        raise WeightsError(f"the input folder {src_dir} does not exist")
    if not base_file.is_file():
        raise WeightsError(f"the base file {base_file} does not exist")
    if base_file.stat().st_size == 0:
        raise WeightsError(f"the base file {base_file} is empty; there is nothing to XOR with")
    expected = read_checksums(checksums) if checksums is not None else None
    skip = {p.resolve() for p in (base_file, checksums) if p is not None}
    jobs = _jobs(src_dir, expected, encrypt, skip)
    plain_md5: dict[str, str] = {}
    with staged_output(out_dir, force=force) as staging:
        total = sum(src.stat().st_size for src, _ in jobs)
        with progress_bar(total, "xor", enabled=progress) as bar:
            for src, plain in jobs:
                out_name = plain + ENCRYPTED_SUFFIX if encrypt else plain
                md5_in, md5_out = xor_stream(src, base_file, staging / out_name, chunk_size=chunk_size, bar=bar)
                plain_md5[plain] = md5_in if encrypt else md5_out
                if expected is not None and expected[plain] != plain_md5[plain]:
                    raise WeightsError(_mismatch(plain, plain_md5[plain], expected[plain], checksums, encrypt))
    names = [plain + ENCRYPTED_SUFFIX if encrypt else plain for _, plain in jobs]
    return XorReport(out_dir, names, plain_md5)


def encrypt_files(
    plain_dir: Path,
    base_file: Path,
    out_dir: Path,
    checksums_out: Path | None = None,
    *,
    force: bool = False,
    progress: bool = False,
    chunk_size: int = CHUNK_SIZE,
) -> XorReport:
    """XOR each file of `plain_dir` with `base_file` into `out_dir` as `name.enc`; write the plain md5 list."""
    report = xor_files(
        plain_dir, base_file, out_dir, encrypt=True, force=force, progress=progress, chunk_size=chunk_size
    )
    if checksums_out is not None:
        partial = checksums_out.with_name(f".{checksums_out.name}.partial")
        partial.write_text(format_checksums(report.plain_md5), encoding="utf-8")
        partial.replace(checksums_out)
    return report


def xor_stream(
    src: Path, base_file: Path, dst: Path, *, chunk_size: int = CHUNK_SIZE, bar: Any = None
) -> tuple[str, str]:
    """XOR `src` with the base-file key stream into `dst` chunk by chunk; returns the md5s of input and output."""
    md5_in, md5_out = hashlib.md5(usedforsecurity=False), hashlib.md5(usedforsecurity=False)
    data = np.empty(chunk_size, dtype=np.uint8)
    key = np.empty(chunk_size, dtype=np.uint8)
    with src.open("rb") as source, dst.open("wb") as sink, _KeyStream(base_file, chunk_size) as keys:
        while count := source.readinto(data.data):
            chunk = data[:count]
            md5_in.update(chunk.data)
            keys.fill(key[:count])
            np.bitwise_xor(chunk, key[:count], out=chunk)
            md5_out.update(chunk.data)
            sink.write(chunk.data)
            if bar is not None:
                bar.update(count)
    return md5_in.hexdigest(), md5_out.hexdigest()


class _KeyStream:
    """The base file as an endless byte stream that starts over at its end."""

    def __init__(self, path: Path, chunk_size: int) -> None:
        self._path = path
        self._size = path.stat().st_size
        self._pos = 0
        self._file: BufferedReader | None = None
        self._tiled: np.ndarray[Any, np.dtype[np.uint8]] | None = None
        if self._size <= chunk_size:
            # A short base repeats many times per chunk: lay it out once rather than reading it over and over.
            repeats = -(-(chunk_size + self._size) // self._size)
            self._tiled = np.tile(np.frombuffer(path.read_bytes(), dtype=np.uint8), repeats)
        else:
            self._file = path.open("rb")

    def fill(self, out: np.ndarray[Any, np.dtype[np.uint8]]) -> None:
        """Fill `out` with the next len(out) key bytes."""
        count = len(out)
        if self._tiled is not None:
            out[:] = self._tiled[self._pos : self._pos + count]
            self._pos = (self._pos + count) % self._size
            return
        assert self._file is not None
        done = 0
        while done < count:
            take = min(count - done, self._size - self._pos)
            got = self._file.readinto(out[done : done + take].data)
            if not got:
                raise WeightsError(f"the base file {self._path} changed while it was being read")
            done += got
            self._pos += got
            if self._pos == self._size:
                self._file.seek(0)
                self._pos = 0

    def __enter__(self) -> _KeyStream:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()


def _jobs(src_dir: Path, expected: dict[str, str] | None, encrypt: bool, skip: set[Path]) -> list[tuple[Path, str]]:
    # (file to read, plain name) pairs, in a stable order.
    if expected is not None:
        jobs = []
        for plain in sorted(expected):
            candidates = [src_dir / plain] if encrypt else [src_dir / (plain + ENCRYPTED_SUFFIX), src_dir / plain]
            found = next((c for c in candidates if c.is_file()), None)
            if found is None:
                raise WeightsError(f"{plain}, listed in the checksum list, is not in {src_dir}")
            jobs.append((found, plain))
        return jobs
    files = [
        p for p in sorted(src_dir.iterdir()) if p.is_file() and not p.name.startswith(".") and p.resolve() not in skip
    ]
    if not files:
        raise WeightsError(f"the input folder {src_dir} has no files to XOR")
    return [(p, p.name if encrypt else p.name.removesuffix(ENCRYPTED_SUFFIX)) for p in files]


def _mismatch(name: str, got: str, want: str, checksums: Path | None, encrypt: bool) -> str:
    if encrypt:
        return f"{name} has md5 {got} but {checksums} lists {want}: it is not the file the list describes"
    return (
        f"wrong base file: {name} decrypts to md5 {got} but {checksums} lists {want};"
        " XOR with the exact original file the model card names (e.g. LLaMA-7B consolidated.00.pth)"
    )
