"""Delta weights (target = base + delta), applied and made shard by shard on the checkpoint files.

Only one tensor of each checkpoint is in memory at a time and safetensors outputs are streamed to disk, so the
footprint stays near two or three times the largest tensor rather than a shard (legacy .bin outputs are collected
shard by shard, as a pickle cannot be streamed). Output shards mirror the delta's (or, for `make_delta`, the
target's) file names and tensor-to-file mapping, with an index when the source has one or several files.

Exactness: `make_delta` checks, tensor by tensor, that `apply_delta` will give the target back bit for bit. When a
delta stored in the target's dtype cannot (rounding in `target - base`, e.g. where a weight is much smaller than
its base value), that tensor's delta is stored one float width up (float16/bfloat16 -> float32 -> float64) and
its target dtype is recorded in `corral-delta.json` so that `apply_delta` casts back. `exact=False` keeps every
delta in the target's dtype (the published WizardVicuna form) and only counts the elements that will differ.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from backends.weights.checkpoint import (
    Checkpoint,
    PlannedTensor,
    TensorInfo,
    TensorSource,
    open_checkpoint,
    open_shard,
    shard_writer,
    write_index,
)
from backends.weights.errors import WeightsError
from backends.weights.progress import progress_bar
from backends.weights.staging import copy_side_files, staged_output

SIDECAR = "corral-delta.json"
_WIDER = {torch.float16: torch.float32, torch.bfloat16: torch.float32, torch.float32: torch.float64}
_SAME_SIZE_INT = {1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


@dataclass
class DeltaReport:
    """What a delta operation wrote."""

    out: Path
    tensors: int = 0
    bytes_written: int = 0
    widened: list[str] = field(default_factory=list)
    inexact_elements: int = 0


def combine(base: torch.Tensor, delta: torch.Tensor, dtype: torch.dtype, *, in_place: bool = False) -> torch.Tensor:
    """base + delta in `dtype`, added in float32 (float64 if either side is float64); non-float deltas pass through.

    `in_place` lets the sum overwrite `delta` when no conversion is needed, saving a tensor's worth of memory;
    IEEE addition is commutative, so the bits are the same either way.
    """
    if not delta.is_floating_point():
        return delta
    work = torch.float64 if torch.float64 in (base.dtype, delta.dtype) else torch.float32
    if in_place and delta.dtype == work == dtype:
        return delta.add_(base.to(work))
    return (base.to(work) + delta.to(work)).to(dtype)


def difference(base: torch.Tensor, target: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """target - base stored in `dtype`, computed like `combine` so that the two round-trip."""
    if not target.is_floating_point():
        return target
    work = torch.float64 if torch.float64 in (base.dtype, target.dtype, dtype) else torch.float32
    return (target.to(work) - base.to(work)).to(dtype)


def differing_elements(a: torch.Tensor, b: torch.Tensor) -> int:
    """How many elements of two same-shaped tensors differ bit for bit (so -0.0 != 0.0 and equal NaNs match)."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return max(a.numel(), b.numel())
    if a.dtype == torch.bool:
        return int((a != b).sum())
    as_int = _SAME_SIZE_INT[a.dtype.itemsize]
    return int((a.contiguous().view(as_int) != b.contiguous().view(as_int)).sum())


def apply_delta(
    base: Path, delta: Path, out: Path, *, pad_vocab: bool = False, force: bool = False, progress: bool = False
) -> DeltaReport:
    """Write base + delta to `out`, one delta shard at a time, with the delta's layout, config and tokenizer.

    `pad_vocab`: a delta with more vocabulary rows than the base (Vicuna v0's added [PAD] token) gets zero rows
    appended to the base's tensors first, as FastChat's v0 tool did; without it, any shape mismatch is refused.
    """
    base_ckpt, delta_ckpt = open_checkpoint(base, "base"), open_checkpoint(delta, "delta")
    target_dtypes = _read_sidecar(delta_ckpt.root)
    report = DeltaReport(out)
    padded: dict[str, int] = {}  # tensor name -> rows the delta has

    def plan(info: TensorInfo) -> tuple[torch.dtype, ...]:
        return (target_dtypes.get(info.name, info.dtype),)

    def compute(name: str, base_t: torch.Tensor, delta_t: torch.Tensor, owned: bool) -> torch.Tensor:
        if name in padded:
            base_t = torch.cat([base_t, base_t.new_zeros((padded[name] - base_t.shape[0], *base_t.shape[1:]))])
        return combine(base_t, delta_t, target_dtypes.get(name, delta_t.dtype), in_place=owned)

    with staged_output(out, force=force) as staging, TensorSource(base_ckpt) as base_src:
        total = _check_compatible(base_src, delta_ckpt, "delta", padded if pad_vocab else None)
        if len(set(padded.values())) > 1:
            raise WeightsError(f"--pad-vocab: the delta's vocabulary tensors disagree on their rows ({padded})")
        _refuse_full_weights(base_src, delta_ckpt, delta)
        with progress_bar(total, "apply-delta", enabled=progress) as bar:
            _transform(base_src, delta_ckpt, staging, plan, compute, report, bar)
        # The base's config and tokenizer fill in for any the delta does not ship.
        copy_side_files([p for p in (base, delta) if p.is_dir()], staging, skip=[SIDECAR])
    return report


def make_delta(
    base: Path, target: Path, out: Path, *, exact: bool = True, force: bool = False, progress: bool = False
) -> DeltaReport:
    """Write target - base to `out` with the target's layout, config and tokenizer (see the module doc on exactness)."""
    base_ckpt, target_ckpt = open_checkpoint(base, "base"), open_checkpoint(target, "target")
    report = DeltaReport(out)
    widened: dict[str, str] = {}

    def plan(info: TensorInfo) -> tuple[torch.dtype, ...]:
        return _ladder(info.dtype) if exact else (info.dtype,)

    def compute(name: str, base_t: torch.Tensor, target_t: torch.Tensor, owned: bool) -> torch.Tensor:
        for dtype in _ladder(target_t.dtype):
            delta_t = difference(base_t, target_t, dtype)
            wrong = differing_elements(combine(base_t, delta_t, target_t.dtype), target_t)
            if not exact:
                report.inexact_elements += wrong
                return delta_t
            if wrong == 0:
                if dtype != target_t.dtype:
                    widened[name] = str(target_t.dtype).removeprefix("torch.")
                return delta_t
        raise WeightsError(
            f"tensor {name!r} cannot be stored as a delta that reproduces it exactly (values too far from the base);"
            " pass --compact to accept a few rounded elements"
        )

    with staged_output(out, force=force) as staging, TensorSource(base_ckpt) as base_src:
        total = _check_compatible(base_src, target_ckpt, "target")
        with progress_bar(total, "make-delta", enabled=progress) as bar:
            _transform(base_src, target_ckpt, staging, plan, compute, report, bar)
        copy_side_files([target] if target.is_dir() else [], staging)
        (staging / SIDECAR).write_text(json.dumps({"format": 1, "target_dtypes": widened}, indent=2) + "\n")
    report.widened = sorted(widened)
    return report


FULL_WEIGHTS_COSINE = 0.5  # a fine-tune points the way its base does (~0.99); a delta does not (~0.0)


def _refuse_full_weights(base_src: TensorSource, delta_ckpt: Checkpoint, delta: Path) -> None:
    """Stop when the "delta" is a fine-tune's full weights (WizardVicunaLM was long taken for a delta): adding it
    to the base would silently double the model. One large matrix tells: a fine-tune's weights point the same way
    as its base's, a delta's do not."""
    with open_shard(delta_ckpt.files[0]) as shard:
        matrices = [
            i
            for i in shard.infos()
            if len(i.shape) == 2 and i.shape[0] * i.shape[1] >= 4096 and i.dtype.is_floating_point
            and base_src.info(i.name, "base").shape == i.shape  # not a row-padded vocabulary matrix
        ]  # fmt: skip
        if not matrices:
            return
        name = matrices[0].name
        ours = shard.read(name).float().flatten()
    theirs = base_src.read(name, "base").float().flatten()
    cosine = float(torch.nn.functional.cosine_similarity(ours, theirs, dim=0))
    if cosine > FULL_WEIGHTS_COSINE:
        raise WeightsError(
            f"{delta} holds full weights, not a delta: its {name!r} points the same way as the base's (cosine "
            f"{cosine:.2f}); serve it as it is (form: full) instead of adding it to the base"
        )


def _ladder(dtype: torch.dtype) -> tuple[torch.dtype, ...]:
    dtypes = [dtype]
    while dtypes[-1] in _WIDER:
        dtypes.append(_WIDER[dtypes[-1]])
    return tuple(dtypes)


def _read_sidecar(root: Path) -> dict[str, torch.dtype]:
    path = root / SIDECAR
    if not path.is_file():
        return {}  # a delta from elsewhere: each target tensor has its delta's dtype
    try:
        names = json.loads(path.read_text())["target_dtypes"]
        return {name: getattr(torch, dtype) for name, dtype in names.items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise WeightsError(f"{path} is not a valid delta description: {exc}") from exc


def _check_compatible(
    base_src: TensorSource, other: Checkpoint, role: str, padded: dict[str, int] | None = None
) -> int:
    # Headers only, so a mismatch fails in seconds rather than after hours of work. Returns the bytes to process.
    # `padded` (apply-delta --pad-vocab) collects the tensors with more rows in the delta than in the base.
    total = 0
    for file in other.files:
        with open_shard(file) as shard:
            for info in shard.infos():
                found = base_src.info(info.name, "base")
                more_rows = (
                    len(found.shape) == len(info.shape) > 0
                    and found.shape[1:] == info.shape[1:]
                    and info.shape[0] > found.shape[0]
                )
                if found.shape != info.shape and padded is not None and more_rows:
                    padded[info.name] = info.shape[0]
                elif found.shape != info.shape:
                    hint = " (a v0-style delta with added tokens: pass --pad-vocab)" if more_rows else ""
                    raise WeightsError(
                        f"tensor {info.name!r} has shape {list(info.shape)} in the {role} but {list(found.shape)}"
                        f" in the base{hint}"
                    )
                total += info.nbytes
    return total


def _transform(
    base_src: TensorSource,
    source: Checkpoint,
    staging: Path,
    plan: Callable[[TensorInfo], tuple[torch.dtype, ...]],
    compute: Callable[[str, torch.Tensor, torch.Tensor, bool], torch.Tensor],
    report: DeltaReport,
    bar: Any,
) -> None:
    weight_map: dict[str, str] = {}
    for file in source.files:
        with open_shard(file) as shard:
            infos = shard.infos()
            writer = shard_writer(staging / file.name, [PlannedTensor(i.name, i.shape, plan(i)) for i in infos])
            for info in infos:
                result = compute(info.name, base_src.read(info.name, "base"), shard.read(info.name), shard.owned)
                writer.write(info.name, result)
                weight_map[info.name] = file.name
                report.tensors += 1
                report.bytes_written += result.numel() * result.dtype.itemsize
                bar.update(info.nbytes)
                del result  # before the next tensor is read, not after: one fewer tensor alive at the peak
            writer.close()
    write_index(staging, source, weight_map, report.bytes_written)
