"""Stand-ins for old GPTQ-for-LLaMa checkpoints (BELLE's GPTQ releases): the same key names, packing and shapes."""

from __future__ import annotations

import torch

QUANTIZED = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def pack_rows(values: torch.Tensor, bits: int) -> torch.Tensor:
    """Pack `32 / bits` consecutive rows of small non-negative ints into one int32 row (low bits first)."""
    per = 32 // bits
    grouped = values.to(torch.int64).reshape(values.shape[0] // per, per, *values.shape[1:])
    packed = sum(grouped[:, j] << (bits * j) for j in range(per))
    return torch.as_tensor(packed).to(torch.uint32).view(torch.int32)


def quantize(weight: torch.Tensor, bits: int, group: int) -> dict[str, torch.Tensor]:
    """One linear layer as GPTQ-for-LLaMa stored it (round-to-nearest stands in for GPTQ's own rounding)."""
    w = weight.t().float()  # [in, out]
    group = min(group, w.shape[0])  # a tiny stand-in layer may be narrower than one group
    top = 2**bits - 1
    lows, highs = w.reshape(-1, group, w.shape[1]).amin(1), w.reshape(-1, group, w.shape[1]).amax(1)
    scales = ((highs - lows) / top).clamp(min=1e-8)  # [groups, out]
    zeros = torch.round(-lows / scales).clamp(0, top)
    ints = torch.round(w / scales.repeat_interleave(group, 0) + zeros.repeat_interleave(group, 0)).clamp(0, top)
    return {
        "qweight": pack_rows(ints, bits),
        "qzeros": pack_rows((zeros - 1).t().contiguous(), bits).t().contiguous(),  # stored minus one, as it did
        "scales": scales.half(),
        "bias": torch.zeros(w.shape[1], dtype=torch.float16),
    }


def old_gptq_state(weights: dict[str, torch.Tensor], bits: int, group: int) -> dict[str, torch.Tensor]:
    """A model's state dict as GPTQ-for-LLaMa saved it: its linear layers quantized, the rest in float16."""
    old: dict[str, torch.Tensor] = {}
    for name, tensor in weights.items():
        layer = name.removesuffix(".weight")
        if name.endswith(".weight") and name.split(".")[-2] in QUANTIZED:
            old |= {f"{layer}.{part}": value for part, value in quantize(tensor, bits, group).items()}
        else:
            old[name] = tensor.half()
    return old
