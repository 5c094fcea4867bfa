"""Atomic output folders: work happens in a hidden sibling folder that is renamed onto `--out` only on success."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from backends.weights.errors import WeightsError

# Files that are weights (rewritten by the tools) rather than config or tokenizer files to carry along.
WEIGHT_SUFFIXES = frozenset({".safetensors", ".bin", ".pth", ".pt", ".ckpt"})


@contextmanager
def staged_output(out: Path, *, force: bool = False) -> Iterator[Path]:
    """Yield an empty folder beside `out`; it replaces `out` when the block succeeds and is deleted otherwise."""
    if out.exists() and not _is_empty_dir(out) and not force:
        raise WeightsError(f"{out} already exists and is not empty; pass --force to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    # Same parent, so the final rename is atomic; the dot prefix keeps a crashed run's leftovers from looking like
    # a finished model.
    # The folder is made inside the try block: a SIGTERM (turned into an exception by the CLI) that lands right
    # after mkdir must still remove it.
    staging = out.parent / f".{out.name}.partial-{secrets.token_hex(4)}"
    taken = False  # the random name belongs to another run: never remove that one
    try:
        try:
            staging.mkdir()
        except FileExistsError:
            taken = True
            raise
        yield staging
        _replace(staging, out)
    finally:
        if not taken and staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


def _replace(staging: Path, out: Path) -> None:
    if not out.exists() and not out.is_symlink():
        staging.rename(out)
        return
    # Move the old output aside first so that there is never a moment with neither version in place.
    old = _fresh_dir(out.parent / f".{out.name}.old") / out.name
    out.rename(old)
    staging.rename(out)
    shutil.rmtree(old.parent, ignore_errors=True)


def _fresh_dir(stem: Path) -> Path:
    # Not tempfile.mkdtemp: its 0700 mode would end up on the published model folder; mkdir honours the umask.
    while True:
        candidate = stem.with_name(f"{stem.name}-{secrets.token_hex(4)}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate


def is_weight_file(path: Path) -> bool:
    """Whether `path` is a checkpoint weight file or a shard index, which the tools write themselves."""
    return path.suffix in WEIGHT_SUFFIXES or path.name.endswith(".index.json")


def copy_side_files(sources: Iterable[Path], dest: Path, *, skip: Iterable[str] = ()) -> list[str]:
    """Copy the config, tokenizer and other non-weight top-level files of each folder; later folders win."""
    skipped = set(skip)
    copied: dict[str, Path] = {}
    for source in sources:
        if not source.is_dir():
            continue
        for path in sorted(source.iterdir()):
            wanted = path.is_file() and not path.name.startswith(".") and path.name not in skipped
            if wanted and not is_weight_file(path):
                copied[path.name] = path
    for name, path in copied.items():
        shutil.copy2(path, dest / name)
    return sorted(copied)
