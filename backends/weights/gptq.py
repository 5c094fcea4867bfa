"""Old-format GPTQ checkpoints (BELLE's `llama7b-2m-{4bit,8bit}-128g.pt`) made servable by TGI and vLLM.

GPTQ-for-LLaMa's early state dicts hold, per quantized linear layer, `qweight` (int32, `in * bits / 32` rows of
packed values), `qzeros` (int32, one row per group of input features, packed), `scales` (one row per group)
and `bias`, with no `g_idx` and no `quantize_config.json`; BELLE loads them with that project's own code
and `--wbits/--groupsize` flags. TGI's `--quantize gptq` (and vLLM, and transformers' GPTQ integration) expect a
`g_idx` per layer (the group of each input feature: without act-order, feature i is in group i // group_size)
and read bits and group size from `quantize_config.json` (TGI assumes 4 bits and no groups without it).

The conversion keeps every stored value as it is (same packing, same zero-point convention), adds `g_idx`,
writes safetensors and the quantize config, and checks each layer's shapes against the bits and group size, so
a wrong `--bits` or `--group-size` is one sentence, not a model that serves noise.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from backends.weights.errors import WeightsError
from backends.weights.staging import copy_side_files, staged_output

NAMED = re.compile(r"(?P<bits>\d+)bit-(?P<group>\d+)g")  # llama7b-2m-4bit-128g.pt


@dataclass(frozen=True)
class GptqReport:
    """What a conversion wrote."""

    out: Path
    layers: int
    bits: int
    group_size: int


def quantize_config(bits: int, group_size: int) -> dict[str, Any]:
    """The `quantize_config.json` of an old GPTQ-for-LLaMa checkpoint (asymmetric, no act-order)."""
    return {
        "bits": bits,
        "group_size": group_size,
        "desc_act": False,
        "sym": False,
        "true_sequential": True,
        "quant_method": "gptq",
        "checkpoint_format": "gptq",
    }


def settings_from_name(path: Path) -> tuple[int | None, int | None]:
    """Bits and group size as BELLE names its files (`...-4bit-128g.pt`), or None each."""
    match = NAMED.search(path.name)
    return (int(match["bits"]), int(match["group"])) if match else (None, None)


def gptq_convert(
    checkpoint: Path,
    out: Path,
    *,
    bits: int | None = None,
    group_size: int | None = None,
    side_files: Path | None = None,
    force: bool = False,
) -> GptqReport:
    """Convert an old GPTQ `.pt` state dict into `out/model.safetensors` + `quantize_config.json` (+ the config and
    tokenizer of `side_files`, with `quantization_config` added to its config.json)."""
    named_bits, named_group = settings_from_name(checkpoint)
    bits, group_size = bits or named_bits, group_size or named_group
    if bits is None or group_size is None:
        raise WeightsError(f"{checkpoint.name} does not say its bits and group size: pass --bits and --group-size")
    if bits not in (2, 4, 8) or (group_size < 1 and group_size != -1):
        raise WeightsError(
            f"--bits {bits} --group-size {group_size} is not a setting TGI's GPTQ kernels take (bits 2, 4 or 8; a "
            "group size, or -1 for none); 3-bit packing crosses 32-bit words and is served by vLLM only"
        )
    state = _load(checkpoint)
    layers = sorted(name.removesuffix(".qweight") for name in state if name.endswith(".qweight"))
    if not layers:
        raise WeightsError(f"{checkpoint.name} has no quantized layers (no '.qweight' tensors): not a GPTQ checkpoint")
    if any(name.endswith(".g_idx") for name in state):
        raise WeightsError(f"{checkpoint.name} already has g_idx: it is in the current format, serve it as it is")
    for layer in layers:
        state[f"{layer}.g_idx"] = _g_idx(checkpoint.name, layer, state, bits, group_size)
    config = quantize_config(bits, group_size)
    with staged_output(out, force=force) as staging:
        if side_files is not None:
            copy_side_files([side_files], staging)
            _add_to_model_config(staging / "config.json", config)
        save_file({k: v.contiguous() for k, v in state.items()}, staging / "model.safetensors", {"format": "pt"})
        (staging / "quantize_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return GptqReport(out, len(layers), bits, group_size)


def _load(checkpoint: Path) -> dict[str, torch.Tensor]:
    if not checkpoint.is_file():
        raise WeightsError(f"the GPTQ checkpoint {checkpoint} does not exist")
    try:
        loaded = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)
    except (RuntimeError, OSError, ValueError, EOFError) as exc:
        raise WeightsError(f"{checkpoint.name} cannot be read as a PyTorch state dict (cut download?): {exc}") from None
    if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise WeightsError(f"{checkpoint.name} is not a state dict of tensors")
    return dict(loaded)


def _g_idx(file: str, layer: str, state: dict[str, torch.Tensor], bits: int, group_size: int) -> torch.Tensor:
    """Each input feature's group, after checking that the layer's tensors fit these bits and this group size."""
    try:
        qweight, qzeros, scales = (state[f"{layer}.{part}"] for part in ("qweight", "qzeros", "scales"))
    except KeyError as missing:
        raise WeightsError(f"{file}: layer {layer} has a qweight but no {missing.args[0].rsplit('.', 1)[-1]}") from None
    in_features = qweight.shape[0] * 32 // bits
    out_features = qweight.shape[1]
    size = in_features if group_size == -1 else group_size  # -1: one group over every input feature
    groups = -(-in_features // size)
    expected = {"scales": (groups, out_features), "qzeros": (groups, out_features * bits // 32)}
    found = {"scales": tuple(scales.shape), "qzeros": tuple(qzeros.shape)}
    if qweight.dtype != torch.int32 or (qweight.shape[0] * 32) % bits or found != expected:
        raise WeightsError(
            f"{file}: layer {layer} does not fit --bits {bits} --group-size {group_size} (qweight "
            f"{list(qweight.shape)}, scales {list(scales.shape)}, qzeros {list(qzeros.shape)}): check the file's name"
        )
    return torch.arange(in_features, dtype=torch.int32) // size


def _add_to_model_config(path: Path, config: dict[str, Any]) -> None:
    if not path.is_file():
        raise WeightsError(f"--side-files has no config.json: give the folder of the unquantized model ({path.parent})")
    model_config = json.loads(path.read_text(encoding="utf-8"))
    model_config["quantization_config"] = config
    path.write_text(json.dumps(model_config, indent=2) + "\n", encoding="utf-8")
