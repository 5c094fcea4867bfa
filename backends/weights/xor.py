"""XOR patches in the point-alpaca container (the BELLE-LLaMA-*-enc releases).

A released file is named `NAME.<sha256 hex of the plain file>.enc`. Its first 32 bytes are that sha256 (binary);
the rest is the plain file XORed with a key file, the original LLaMA `consolidated.00.pth`. The key stream is
piecewise, as point-alpaca's decrypt.py (and BELLE's copy of it) reads it: the data goes in 10 MiB pieces, each
XORed with the next 10 MiB read of the key file; a read shorter than its data piece (the key's last piece) repeats
within that piece, and a read at the key's end starts the key over. So a file shorter than the key sees the key
from its first byte, and one longer than the key (BELLE-LLaMA-7B-0.6M: 27 GB against a 13.5 GB key) sees the
key's short last piece repeated before the key restarts.

Decrypting writes `NAME` and checks its sha256 against the header (and the name); the md5 list of a model card is
an extra check (a file, or the values in a seed config). Encrypting writes the container from plain files. Both
stream in constant memory (one 10 MiB piece of data and one of key at a time), and are their own check: the
round trip is byte-identical.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from io import BufferedReader
from pathlib import Path
from typing import Any

import numpy as np

from backends.weights.errors import WeightsError
from backends.weights.progress import progress_bar
from backends.weights.staging import staged_output

PIECE = 10 * 1024 * 1024  # point-alpaca's read size: the unit of its key stream
HEADER = 32  # the plain file's sha256, binary
CONTAINER = re.compile(r"^(?P<plain>.+)\.(?P<sha>[0-9a-f]{64})\.enc$")
_CHECKSUM_LINE = re.compile(r"^([0-9a-fA-F]{32}) [ *](.+)$")
Bytes = np.ndarray[Any, np.dtype[np.uint8]]


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


def format_checksums(md5s: Mapping[str, str]) -> str:
    """An md5 list in md5sum's format, sorted by name."""
    return "".join(f"{md5}  {name}\n" for name, md5 in sorted(md5s.items()))


class KeyStream:
    """The key file read as point-alpaca reads it: `piece` bytes at a time, starting over at its end."""

    def __init__(self, path: Path, piece: int = PIECE) -> None:
        if not path.is_file():
            raise WeightsError(f"the base file {path} does not exist")
        if path.stat().st_size == 0:
            raise WeightsError(f"the base file {path} is empty; there is nothing to XOR with")
        self._path = path
        self._piece = piece
        self._file: BufferedReader = path.open("rb")

    def next_for(self, count: int) -> Bytes:
        """The key bytes for the next data piece of `count` bytes (at most one piece)."""
        read = self._file.read(self._piece)
        if not read:  # the key's end: start over
            self._file.seek(0)
            read = self._file.read(self._piece)
        key = np.frombuffer(read, dtype=np.uint8)
        return key[:count] if len(key) >= count else np.resize(key, count)  # np.resize repeats a short piece

    def close(self) -> None:
        """Release the file."""
        self._file.close()


@dataclass(frozen=True)
class Digests:
    """What one pass through the container learnt: the plain file's sha256 and md5, and the encrypted file's md5."""

    plain_sha256: str
    plain_md5: str
    encrypted_md5: str | None  # only when decrypting (an encrypted file's header is written last)


def xor_container(
    src: Path, base_file: Path, dst: Path, *, decrypt: bool, piece: int = PIECE, bar: Any = None
) -> Digests:
    """One file through the container, either way.

    Decrypting reads the header first and XORs the rest; encrypting writes the plain file's sha256 as the header
    (known only at the end: the header is written last, in place).
    """
    sha, md5, raw = hashlib.sha256(), hashlib.md5(usedforsecurity=False), hashlib.md5(usedforsecurity=False)
    keys = KeyStream(base_file, piece)
    try:
        with src.open("rb") as source, dst.open("wb") as sink:
            if decrypt:
                raw.update(source.read(HEADER))
            else:
                sink.write(bytes(HEADER))
            while data := source.read(piece):
                plain_in = np.frombuffer(data, dtype=np.uint8)
                out = np.bitwise_xor(plain_in, keys.next_for(len(plain_in)))
                plain = out if decrypt else plain_in
                sha.update(plain.data)
                md5.update(plain.data)
                if decrypt:
                    raw.update(data)
                sink.write(out.data)
                if bar is not None:
                    bar.update(len(data))
            if not decrypt:
                sink.seek(0)
                sink.write(sha.digest())
    finally:
        keys.close()
    return Digests(sha.hexdigest(), md5.hexdigest(), raw.hexdigest() if decrypt else None)


def xor_files(
    src_dir: Path,
    base_file: Path,
    out_dir: Path,
    checksums: Path | None = None,
    *,
    md5s: Mapping[str, str] | None = None,
    base_md5: str | None = None,
    only: Sequence[str] = (),
    force: bool = False,
    progress: bool = False,
    piece: int = PIECE,
) -> XorReport:
    """Decrypt every `NAME.<sha256>.enc` of `src_dir` into `out_dir/NAME`, checking each against its sha256
    header and, when given, against the model card's md5s (`checksums`, as `md5sum` prints them, or `md5s`):
    an md5 of an `.enc` file checks the download, one of a plain name checks the decrypted file.

    `base_md5` (the original key file's md5, e.g. LLaMA-7B's consolidated.00.pth) is checked first; then a file
    that does not decrypt to its sha256 can only be a damaged download. Without it, a wrong key that is itself a
    similar torch file cannot always be told from a cut download (their zip headers cancel out).
    """
    jobs = _containers(src_dir)
    if only:
        unknown = sorted(set(only) - {plain for _, plain, _ in jobs})
        if unknown:
            raise WeightsError(f"{unknown[0]} is not among the encrypted files of {src_dir}")
        jobs = [job for job in jobs if job[1] in only]
    if base_md5 is not None:
        _check_key(base_file, base_md5.lower(), progress)
    expected = {**(read_checksums(checksums) if checksums is not None else {}), **(md5s or {})}
    missing = sorted(set(expected) - {plain for _, plain, _ in jobs} - {src.name for src, _, _ in jobs})
    missing = [name for name in missing if not only]  # a partial decrypt may be given the whole card's list
    if missing:
        raise WeightsError(f"{', '.join(missing)}: listed with an md5 but not in {src_dir} as NAME.<sha256>.enc")
    plain_md5: dict[str, str] = {}
    with staged_output(out_dir, force=force) as staging:
        total = sum(src.stat().st_size for src, _, _ in jobs)
        with progress_bar(total, "decrypt", enabled=progress) as bar:
            for src, plain, named_sha in jobs:
                header = _header(src)
                if header != named_sha:
                    raise WeightsError(
                        f"{src.name}: the sha256 in its name is not the one in its header: the file was renamed or "
                        "altered"
                    )
                digests = xor_container(src, base_file, staging / plain, decrypt=True, piece=piece, bar=bar)
                if src.name in expected and expected[src.name] != digests.encrypted_md5:
                    raise WeightsError(
                        f"{src.name} has md5 {digests.encrypted_md5}, not the model card's {expected[src.name]}: "
                        f"the download is damaged or cut ({src.stat().st_size:,} bytes); download it again"
                    )
                if digests.plain_sha256 != header:
                    raise WeightsError(_diagnosis(src, staging / plain, base_file, key_checked=base_md5 is not None))
                if plain in expected and expected[plain] != digests.plain_md5:
                    raise WeightsError(
                        f"{plain} decrypts to the file its header names, but its md5 {digests.plain_md5} is not the "
                        f"model card's {expected[plain]}: the md5 list is for another release"
                    )
                plain_md5[plain] = digests.plain_md5
    return XorReport(out_dir, [plain for _, plain, _ in jobs], plain_md5)


def encrypt_files(
    plain_dir: Path,
    base_file: Path,
    out_dir: Path,
    checksums_out: Path | None = None,
    *,
    force: bool = False,
    progress: bool = False,
    piece: int = PIECE,
) -> XorReport:
    """Write every visible file of `plain_dir` as `NAME.<sha256>.enc` into `out_dir`; optionally the md5 list."""
    if not plain_dir.is_dir():
        raise WeightsError(f"the input folder {plain_dir} does not exist")
    files = [p for p in sorted(plain_dir.iterdir()) if p.is_file() and not p.name.startswith(".")]
    files = [p for p in files if p.resolve() != base_file.resolve()]
    if not files:
        raise WeightsError(f"the input folder {plain_dir} has no files to encrypt")
    plain_md5: dict[str, str] = {}
    names: list[str] = []
    total = sum(p.stat().st_size for p in files)
    with staged_output(out_dir, force=force) as staging, progress_bar(total, "encrypt", enabled=progress) as bar:
        for path in files:
            partial = staging / f".{path.name}.partial"
            digests = xor_container(path, base_file, partial, decrypt=False, piece=piece, bar=bar)
            names.append(f"{path.name}.{digests.plain_sha256}.enc")
            partial.rename(staging / names[-1])
            plain_md5[path.name] = digests.plain_md5
    if checksums_out is not None:  # after the output folder is in place (the list may be written into it)
        partial_list = checksums_out.with_name(f".{checksums_out.name}.partial")
        partial_list.write_text(format_checksums(plain_md5), encoding="utf-8")
        partial_list.replace(checksums_out)
    return XorReport(out_dir, names, plain_md5)


def _containers(src_dir: Path) -> list[tuple[Path, str, str]]:
    """(file, plain name, sha256 in its name) of every container in the folder; other files are an error."""
    if not src_dir.is_dir():
        raise WeightsError(f"the input folder {src_dir} does not exist")
    jobs: list[tuple[Path, str, str]] = []
    strays: list[str] = []
    for path in sorted(p for p in src_dir.iterdir() if p.is_file() and not p.name.startswith(".")):
        match = CONTAINER.match(path.name)
        if match:
            jobs.append((path, match["plain"], match["sha"]))
        elif path.suffix == ".enc":
            strays.append(path.name)
    if strays:
        raise WeightsError(
            f"{strays[0]} is not named NAME.<sha256>.enc as the encrypted releases are (renamed after download?)"
        )
    if not jobs:
        raise WeightsError(f"{src_dir} has no encrypted files (NAME.<sha256>.enc)")
    plains = [plain for _, plain, _ in jobs]
    twice = sorted({plain for plain in plains if plains.count(plain) > 1})
    if twice:
        raise WeightsError(f"{src_dir} holds two encrypted versions of {twice[0]}: keep the one the model card lists")
    return jobs


def _header(src: Path) -> str:
    with src.open("rb") as f:
        header = f.read(HEADER)
    if len(header) < HEADER:
        raise WeightsError(f"{src.name} is {len(header)} bytes, shorter than its 32-byte header: the download is cut")
    return header.hex()


ZIP_START = b"PK\x03\x04"  # PyTorch .bin / .pth files are zip archives
TEXT_SUFFIXES = (".json", ".txt", ".md", ".py")


def _check_key(base_file: Path, expected: str, progress: bool) -> None:
    """The key file's md5 against the one the model card gives for the original."""
    if not base_file.is_file():
        raise WeightsError(f"the base file {base_file} does not exist")
    digest = hashlib.md5(usedforsecurity=False)
    with base_file.open("rb") as f, progress_bar(base_file.stat().st_size, "check base", enabled=progress) as bar:
        while block := f.read(PIECE):
            digest.update(block)
            bar.update(len(block))
    if digest.hexdigest() != expected:
        raise WeightsError(
            f"wrong base file: {base_file} has md5 {digest.hexdigest()}, not {expected}, the md5 of the original the "
            "model card names (e.g. LLaMA-7B's consolidated.00.pth)"
        )


def _diagnosis(src: Path, plain: Path, base_file: Path, *, key_checked: bool) -> str:
    """One sentence on why a file did not decrypt to its header's sha256: the base file, or the download.

    With the right key the start of a file decrypts right even when its end is missing: a torch file starts as a
    zip (PK 03 04), a JSON file is UTF-8 text. A start that is neither means the key is wrong. The converse does
    not hold: a wrong key that is itself a similar torch file cancels out over their common zip header.
    """
    size = f"{src.stat().st_size:,} bytes"
    if key_checked:
        return f"{src.name} is incomplete or damaged ({size}): the base file is the original; download it again"
    with plain.open("rb") as f:
        start = f.read(4096)
    garbled = (plain.suffix in (".bin", ".pth", ".pt") and not start.startswith(ZIP_START)) or (
        plain.suffix in TEXT_SUFFIXES and not _is_text(start)
    )
    if garbled:
        return (
            f"wrong base file: {src.name} does not decrypt with {base_file} ({base_file.stat().st_size:,} bytes); "
            "use the exact original file the model card names (LLaMA-7B's consolidated.00.pth)"
        )
    return (
        f"{src.name} does not decrypt to the sha256 in its header: either {base_file} is not the original (pass "
        f"--base-md5 with the model card's md5 to check it) or the download is cut or damaged ({size}; pass "
        "--checksums with the card's md5 list)"
    )


def _is_text(start: bytes) -> bool:
    try:
        start.decode("utf-8")
    except UnicodeDecodeError as exc:  # a character cut at the end of the sample is still text
        return exc.start >= len(start) - 3
    return True
