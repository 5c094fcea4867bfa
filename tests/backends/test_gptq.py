"""gptq-convert on a stand-in laid out as BELLE's old GPTQ-for-LLaMa files: same key names, packing and shapes.

The stand-in is a tiny LLaMA quantized here the way GPTQ-for-LLaMa packed its checkpoints (asymmetric groups,
`qweight` packed along the input features, `qzeros` stored minus one and packed along the outputs, no `g_idx`).
The converted file is then dequantized the way the GPTQ kernels read the current format (through `g_idx`), and
must give back the weights to within half a quantization step.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import LlamaForCausalLM

from backends.demo import DemoModels
from backends.weights.__main__ import main
from backends.weights.errors import WeightsError
from backends.weights.gptq import gptq_convert
from tests.support.gptq import old_gptq_state, quantize


def unpack_rows(packed: torch.Tensor, bits: int) -> torch.Tensor:
    raw = packed.view(torch.uint32).to(torch.int64)
    parts = [(raw >> (bits * j)) & (2**bits - 1) for j in range(32 // bits)]
    return torch.stack(parts, 1).reshape(raw.shape[0] * (32 // bits), *raw.shape[1:])


def dequantize(state: dict[str, torch.Tensor], layer: str, bits: int) -> torch.Tensor:
    """The current format as the kernels read it: every input feature through its g_idx group."""
    g_idx = state[f"{layer}.g_idx"].long()
    ints = unpack_rows(state[f"{layer}.qweight"], bits)
    zeros = unpack_rows(state[f"{layer}.qzeros"].t().contiguous(), bits).t() + 1
    scales = state[f"{layer}.scales"].float()
    return ((ints - zeros[g_idx]) * scales[g_idx]).t()  # [out, in]


@pytest.fixture
def stand_in(demo_models: DemoModels, tmp_path: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    model = LlamaForCausalLM.from_pretrained(demo_models.base)
    return tmp_path, {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


@pytest.mark.parametrize("bits", [4, 8])
def test_an_old_gptq_checkpoint_converts_and_dequantizes_back(
    stand_in: tuple[Path, dict[str, torch.Tensor]], demo_models: DemoModels, bits: int
) -> None:
    root, weights = stand_in
    old = old_gptq_state(weights, bits, 16)
    quantized = [name.removesuffix(".qweight") for name in old if name.endswith(".qweight")]
    checkpoint = root / f"llama7b-2m-{bits}bit-16g.pt"  # BELLE's naming says the settings
    torch.save(old, checkpoint)

    args = ["gptq-convert", "--checkpoint", str(checkpoint), "--side-files", str(demo_models.base), "--quiet"]
    assert main([*args, "--out", str(root / "served")]) == 0
    converted = load_file(root / "served" / "model.safetensors")
    expected = {"bits": bits, "group_size": 16, "desc_act": False, "sym": False}
    settings = json.loads((root / "served" / "quantize_config.json").read_text())
    assert {k: settings[k] for k in expected} == expected
    assert json.loads((root / "served" / "config.json").read_text())["quantization_config"] == settings
    assert (root / "served" / "tokenizer.json").is_file()
    for layer in quantized:
        in_features = weights[f"{layer}.weight"].shape[1]
        assert torch.equal(converted[f"{layer}.g_idx"], torch.arange(in_features, dtype=torch.int32) // 16)
        for part in ("qweight", "qzeros", "scales", "bias"):  # stored values untouched
            assert torch.equal(converted[f"{layer}.{part}"], old[f"{layer}.{part}"]), (layer, part)
        step = converted[f"{layer}.scales"].float().max()
        error = (dequantize(converted, layer, bits) - weights[f"{layer}.weight"]).abs().max()
        assert error <= step / 2 + 1e-3, (layer, float(error), float(step))


def test_no_groups_is_group_size_minus_one(stand_in: tuple[Path, dict[str, torch.Tensor]]) -> None:
    root, weights = stand_in
    weight = weights["model.layers.0.self_attn.q_proj.weight"]  # [64 out, 64 in]
    old = {f"model.layers.0.self_attn.q_proj.{k}": v for k, v in quantize(weight, 4, 64).items()}  # one group
    torch.save(old, root / "quantized.pt")
    report = gptq_convert(root / "quantized.pt", root / "out", bits=4, group_size=-1)
    assert report.group_size == -1
    converted = load_file(root / "out" / "model.safetensors")
    assert torch.equal(converted["model.layers.0.self_attn.q_proj.g_idx"], torch.zeros(64, dtype=torch.int32))
    assert json.loads((root / "out" / "quantize_config.json").read_text())["group_size"] == -1


def test_wrong_settings_and_wrong_files_get_one_sentence(stand_in: tuple[Path, dict[str, torch.Tensor]]) -> None:
    root, weights = stand_in
    weight = weights["model.layers.0.self_attn.q_proj.weight"]
    old = {f"model.layers.0.self_attn.q_proj.{k}": v for k, v in quantize(weight, 4, 16).items()}
    torch.save(old, root / "llama7b-2m-4bit-16g.pt")
    with pytest.raises(WeightsError, match=r"does not fit --bits 8 --group-size 16 .*check the file's name"):
        gptq_convert(root / "llama7b-2m-4bit-16g.pt", root / "out", bits=8)
    with pytest.raises(WeightsError, match=r"does not fit --bits 4 --group-size 32"):
        gptq_convert(root / "llama7b-2m-4bit-16g.pt", root / "out", group_size=32)
    torch.save(old, root / "quantized.pt")
    with pytest.raises(WeightsError, match="does not say its bits and group size: pass --bits and --group-size"):
        gptq_convert(root / "quantized.pt", root / "out")
    with pytest.raises(WeightsError, match="3-bit packing crosses 32-bit words and is served by vLLM only"):
        gptq_convert(root / "llama7b-2m-4bit-16g.pt", root / "out", bits=3)
    torch.save({"w": weight}, root / "plain-4bit-16g.pt")
    with pytest.raises(WeightsError, match="no quantized layers"):
        gptq_convert(root / "plain-4bit-16g.pt", root / "out")
    whole = (root / "llama7b-2m-4bit-16g.pt").read_bytes()
    (root / "cut-4bit-16g.pt").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(WeightsError, match=r"cannot be read as a PyTorch state dict \(cut download\?\)"):
        gptq_convert(root / "cut-4bit-16g.pt", root / "out")
    assert not (root / "out").exists()
