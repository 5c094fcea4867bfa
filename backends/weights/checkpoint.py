"""Checkpoint folders on disk: which file holds each tensor, reading tensors one by one, streaming shards out."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from safetensors import SafetensorError, safe_open

from backends.weights.errors import WeightsError, first_line

SAFETENSORS_INDEX = "model.safetensors.index.json"
BIN_INDEX = "pytorch_model.bin.index.json"

# safetensors' dtype codes (the file format's names) for the torch dtypes a checkpoint can hold.
DTYPE_CODES: dict[torch.dtype, str] = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.float8_e4m3fn: "F8_E4M3",
    torch.float8_e5m2: "F8_E5M2",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}
DTYPES_BY_CODE = {code: dtype for dtype, code in DTYPE_CODES.items()}


@dataclass(frozen=True)
class TensorInfo:
    """A tensor's name, shape and dtype, known without reading its data."""

    name: str
    shape: tuple[int, ...]
    dtype: torch.dtype

    @property
    def nbytes(self) -> int:
        """Size of the tensor's data in bytes."""
        return _numel(self.shape) * self.dtype.itemsize


@dataclass(frozen=True)
class Checkpoint:
    """The weight files of one checkpoint, in order, and which file holds each tensor."""

    root: Path
    files: tuple[Path, ...]
    weight_map: dict[str, Path]
    index_name: str | None

    @property
    def sharded(self) -> bool:
        """Whether the checkpoint comes as several files (and so needs an index)."""
        return self.index_name is not None or len(self.files) > 1


def open_checkpoint(path: Path, role: str) -> Checkpoint:
    """Find the weight files of the checkpoint at `path` (a folder or one file); `role` names it in errors."""
    if not path.exists():
        raise WeightsError(f"the {role} checkpoint {path} does not exist")
    if path.is_file():
        return Checkpoint(path.parent, (path,), _scan([path], role), None)
    for index_name in (SAFETENSORS_INDEX, BIN_INDEX):
        if (path / index_name).is_file():
            return _from_index(path, index_name, role)
    for single in ("model.safetensors", "pytorch_model.bin"):
        if (path / single).is_file():
            return Checkpoint(path, (path / single,), _scan([path / single], role), None)
    files = sorted(path.glob("*.safetensors")) or sorted(path.glob("*.bin"))
    if not files:
        raise WeightsError(f"the {role} folder {path} has no .safetensors or .bin weight files")
    return Checkpoint(path, tuple(files), _scan(files, role), None)


def _from_index(root: Path, index_name: str, role: str) -> Checkpoint:
    try:
        weight_map = json.loads((root / index_name).read_text())["weight_map"]
    except (ValueError, KeyError, TypeError) as exc:
        reason = first_line(exc)
        raise WeightsError(f"the {role} index {root / index_name} is not a valid shard index: {reason}") from exc
    mapping = {name: root / file for name, file in weight_map.items()}
    files = tuple(dict.fromkeys(sorted(mapping.values())))
    for file in files:
        if not file.is_file():
            raise WeightsError(f"the {role} index {root / index_name} lists {file.name}, which is missing")
    return Checkpoint(root, files, mapping, index_name)


def _scan(files: Sequence[Path], role: str) -> dict[str, Path]:
    mapping: dict[str, Path] = {}
    for file in files:
        with open_shard(file) as shard:
            for info in shard.infos():
                if info.name in mapping:
                    raise WeightsError(f"tensor {info.name!r} appears in both {mapping[info.name]} and {file} ({role})")
                mapping[info.name] = file
    return mapping


class ShardReader(Protocol):
    """One open weight file: tensor shapes without reading, and tensors one at a time."""

    owned: bool  # whether read() hands over fresh tensors the caller may overwrite (not views of a mapped file)

    def infos(self) -> list[TensorInfo]:
        """Every tensor of the file, in storage order."""
        ...

    def read(self, name: str) -> torch.Tensor:
        """The tensor called `name`."""
        ...


class _SafetensorsReader:
    owned = True  # the pread backend copies each tensor into its own storage

    def __init__(self, handle: Any, path: Path) -> None:
        self._handle = handle
        self._path = path

    def infos(self) -> list[TensorInfo]:
        result = []
        for name in self._handle.offset_keys():
            piece = self._handle.get_slice(name)
            code = piece.get_dtype()
            if code not in DTYPES_BY_CODE:
                raise WeightsError(f"tensor {name!r} in {self._path} has dtype {code}, which these tools do not handle")
            result.append(TensorInfo(name, tuple(piece.get_shape()), DTYPES_BY_CODE[code]))
        return result

    def read(self, name: str) -> torch.Tensor:
        tensor: torch.Tensor = self._handle.get_tensor(name)
        return tensor


class _BinReader:
    owned = False  # views of the mapped file

    def __init__(self, state: dict[str, torch.Tensor]) -> None:
        self._state = state

    def infos(self) -> list[TensorInfo]:
        return [TensorInfo(name, tuple(t.shape), t.dtype) for name, t in self._state.items()]

    def read(self, name: str) -> torch.Tensor:
        return self._state[name]


@contextmanager
def open_shard(path: Path) -> Iterator[ShardReader]:
    """Open one weight file for reading; nothing but the tensors asked for is brought into memory."""
    if path.suffix == ".safetensors":
        try:
            # pread, not mmap: pages of a mapped file count towards the process's RSS for as long as the mapping
            # lives, which would add a whole shard per open file to the footprint.
            handle = safe_open(path, framework="pt", backend="pread")
        except (SafetensorError, OSError) as exc:
            raise WeightsError(f"{path} is not a readable safetensors file: {first_line(exc)}") from exc
        with handle:
            yield _SafetensorsReader(handle, path)
        return
    try:
        # mmap keeps a legacy .bin shard out of anonymous memory; weights_only refuses pickled code.
        state = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    except (RuntimeError, OSError, ValueError) as exc:
        raise WeightsError(f"{path} is not a readable PyTorch checkpoint: {first_line(exc)}") from exc
    if not isinstance(state, dict) or not all(isinstance(t, torch.Tensor) for t in state.values()):
        raise WeightsError(f"{path} is not a flat state dict of tensors")
    try:
        yield _BinReader(state)
    finally:
        state.clear()  # drop the tensors, and with them the file mapping


class TensorSource:
    """Reads tensors by name from a (possibly sharded) checkpoint, keeping only one of its files open."""

    def __init__(self, checkpoint: Checkpoint) -> None:
        self.checkpoint = checkpoint
        self._stack = ExitStack()
        self._path: Path | None = None
        self._reader: ShardReader | None = None
        self._infos: dict[str, TensorInfo] = {}

    def _shard(self, name: str, role: str) -> ShardReader:
        path = self.checkpoint.weight_map.get(name)
        if path is None:
            raise WeightsError(f"tensor {name!r} is missing from the {role} checkpoint {self.checkpoint.root}")
        if path != self._path or self._reader is None:
            # One file at a time: a mapped legacy .bin shard stays in RSS while it is open.
            self.close()
            self._reader = self._stack.enter_context(open_shard(path))
            self._path = path
            self._infos = {info.name: info for info in self._reader.infos()}
        return self._reader

    def info(self, name: str, role: str) -> TensorInfo:
        """Shape and dtype of `name`; raises WeightsError naming it when the checkpoint lacks it."""
        self._shard(name, role)
        if name not in self._infos:
            raise WeightsError(f"tensor {name!r} is listed in the {role} index but missing from {self._path}")
        return self._infos[name]

    def read(self, name: str, role: str) -> torch.Tensor:
        """The tensor called `name`."""
        self.info(name, role)
        assert self._reader is not None
        return self._reader.read(name)

    def close(self) -> None:
        """Close the open file, if any."""
        self._stack.close()
        self._reader = self._path = None
        self._infos = {}

    def __enter__(self) -> TensorSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ShardWriter(Protocol):
    """Writes one output weight file, tensor by tensor."""

    def write(self, name: str, tensor: torch.Tensor) -> None:
        """Add the next tensor."""
        ...

    def close(self) -> None:
        """Finish the file."""
        ...


@dataclass(frozen=True)
class PlannedTensor:
    """A tensor an output shard will hold: its name, shape and the dtypes it may end up stored in."""

    name: str
    shape: tuple[int, ...]
    dtypes: tuple[torch.dtype, ...]


class SafetensorsWriter:
    """Streams a safetensors file: tensors go to disk as they come, so the shard is never whole in memory.

    The header (names, dtypes, offsets) precedes the data, but a tensor's final dtype may only be known once it is
    computed; so room for the largest possible header is reserved up front and the real one, padded with spaces
    as the format allows, is written at the end.
    """

    def __init__(self, path: Path, plan: Sequence[PlannedTensor], metadata: dict[str, str] | None = None) -> None:
        self._plan = list(plan)
        self._metadata = {"format": "pt", **(metadata or {})}
        self._entries: dict[str, dict[str, Any]] = {}
        self._offset = 0
        worst: dict[str, Any] = {"__metadata__": self._metadata}
        end = 0
        for item in self._plan:
            size = _numel(item.shape) * max(d.itemsize for d in item.dtypes)
            end += size
            code = max((DTYPE_CODES[d] for d in item.dtypes), key=len)
            worst[item.name] = {"dtype": code, "shape": list(item.shape), "data_offsets": [end, end]}
        self._header_size = _round_up(len(json.dumps(worst, separators=(",", ":")).encode()), 8)
        self._file = path.open("wb")
        self._file.seek(8 + self._header_size)

    def write(self, name: str, tensor: torch.Tensor) -> None:
        """Append `tensor`; tensors must come in the planned order, shape and dtypes."""
        item = self._plan[len(self._entries)]
        if name != item.name or tuple(tensor.shape) != item.shape or tensor.dtype not in item.dtypes:
            raise ValueError(f"{name} {tuple(tensor.shape)} {tensor.dtype} does not match the plan entry {item}")
        data = tensor.detach().contiguous().reshape(-1).view(torch.uint8).numpy()
        self._file.write(data.data)  # the buffer itself, no bytes copy
        start, self._offset = self._offset, self._offset + data.nbytes
        self._entries[name] = {
            "dtype": DTYPE_CODES[tensor.dtype],
            "shape": list(item.shape),
            "data_offsets": [start, self._offset],
        }

    def close(self) -> None:
        """Write the real header into the reserved room and close the file."""
        if len(self._entries) != len(self._plan):
            raise ValueError(f"only {len(self._entries)} of {len(self._plan)} planned tensors were written")
        header = json.dumps({"__metadata__": self._metadata, **self._entries}, separators=(",", ":")).encode()
        self._file.seek(0)
        self._file.write(struct.pack("<Q", self._header_size))
        self._file.write(header.ljust(self._header_size, b" "))
        self._file.close()


class BinWriter:
    """Collects a legacy PyTorch shard and saves it at the end (the pickle format cannot be streamed)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._state: dict[str, torch.Tensor] = {}

    def write(self, name: str, tensor: torch.Tensor) -> None:
        """Add the next tensor."""
        self._state[name] = tensor.contiguous()

    def close(self) -> None:
        """Save the collected tensors."""
        torch.save(self._state, self._path)
        self._state.clear()


def shard_writer(path: Path, plan: Sequence[PlannedTensor], metadata: dict[str, str] | None = None) -> ShardWriter:
    """A writer for `path`, in the format its suffix names (.safetensors streams; anything else is torch.save)."""
    if path.suffix == ".safetensors":
        return SafetensorsWriter(path, plan, metadata)
    return BinWriter(path)


def write_index(dest: Path, source: Checkpoint, weight_map: dict[str, str], total_size: int) -> None:
    """Write the shard index for an output mirroring `source`'s layout, when `source` is sharded."""
    if not source.sharded:
        return
    default = SAFETENSORS_INDEX if source.files[0].suffix == ".safetensors" else BIN_INDEX
    index = {"metadata": {"total_size": total_size}, "weight_map": dict(sorted(weight_map.items()))}
    (dest / (source.index_name or default)).write_text(json.dumps(index, indent=2) + "\n")


def _numel(shape: Sequence[int]) -> int:
    count = 1
    for dim in shape:
        count *= dim
    return count


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple
