"""Weight reconstruction on real tiny checkpoints: LoRA merges, delta weights, XOR patches and the CLI."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

import prompts
from backends.base import GenerationParams, Message
from backends.demo import DemoModels, tiny_llama_config
from backends.weights import (
    WeightsError,
    apply_delta,
    encrypt_files,
    make_delta,
    merge_lora,
    read_checksums,
    xor_files,
)
from backends.weights.__main__ import main
from backends.weights.xor import PIECE
from tests.support.standins import CHINESE, TEXT, llama1_folder, sentencepiece_model

REPO = Path(__file__).resolve().parents[2]
PROMPT_IDS = [[5, 17, 42, 99, 230, 7, 300, 12]]


def logits(model: torch.nn.Module, ids: list[list[int]] = PROMPT_IDS) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(torch.tensor(ids)).logits  # type: ignore[no-any-return]


def tensors_of(folder: Path) -> dict[str, torch.Tensor]:
    result: dict[str, torch.Tensor] = {}
    for file in sorted(folder.glob("*.safetensors")):
        result.update(load_file(file))
    for file in sorted(folder.glob("*.bin")):
        result.update(torch.load(file, weights_only=True))
    return result


def assert_bit_identical(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> None:
    assert got.keys() == want.keys()
    for name, tensor in want.items():
        assert got[name].dtype == tensor.dtype, name
        assert torch.equal(got[name].contiguous().view(torch.uint8), tensor.contiguous().view(torch.uint8)), name


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


# --- LoRA merges ---------------------------------------------------------------------------------------------


def test_merged_lora_gives_the_peft_models_logits(demo_models: DemoModels, tmp_path: Path) -> None:
    out = tmp_path / "merged"
    args = ["merge-lora", "--base", str(demo_models.base), "--adapter", str(demo_models.adapters["lora-a"])]
    assert main([*args, "--out", str(out), "--quiet"]) == 0

    reference = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(demo_models.base), demo_models.adapters["lora-a"]
    )
    merged = AutoModelForCausalLM.from_pretrained(out)
    assert torch.allclose(logits(merged), logits(reference), atol=1e-5)
    assert not torch.allclose(logits(merged), logits(AutoModelForCausalLM.from_pretrained(demo_models.base)))
    assert (out / "model.safetensors").is_file() and not (out / "adapter_config.json").exists()
    assert len(AutoTokenizer.from_pretrained(out)) == len(AutoTokenizer.from_pretrained(demo_models.base))


def build_extended_vocab_adapter(demo_models: DemoModels, root: Path) -> tuple[Path, Path, int]:
    """An untied tiny base and a Chinese-Alpaca-like adapter: larger tokenizer, LoRA + saved embed_tokens/lm_head."""
    tokenizer = AutoTokenizer.from_pretrained(demo_models.base)
    config = tiny_llama_config(
        tokenizer, hidden_size=32, intermediate_size=64, num_hidden_layers=1, tie_word_embeddings=False
    )
    torch.manual_seed(3)
    LlamaForCausalLM(config).save_pretrained(root / "base")
    tokenizer.save_pretrained(root / "base")

    extended = AutoTokenizer.from_pretrained(demo_models.base)
    extended.add_tokens([f"<zh{i}>" for i in range(37)])
    model = LlamaForCausalLM.from_pretrained(root / "base")
    model.resize_token_embeddings(len(extended), mean_resizing=False)
    lora = LoraConfig(
        r=4,
        lora_alpha=8,
        target_modules=["q_proj", "v_proj"],
        modules_to_save=["embed_tokens", "lm_head"],
        init_lora_weights=False,
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, lora)
    with torch.no_grad():  # "train" the saved copies so they differ from the resized base
        for name, param in peft_model.named_parameters():
            if "modules_to_save" in name:
                param.add_(torch.randn_like(param) * 0.1)
    peft_model.save_pretrained(str(root / "adapter"), save_embedding_layers=False)  # modules_to_save carry them
    extended.save_pretrained(root / "adapter")
    return root / "base", root / "adapter", len(extended)


def test_extended_vocabulary_adapter_is_merged_after_resizing(demo_models: DemoModels, tmp_path: Path) -> None:
    base, adapter, vocab = build_extended_vocab_adapter(demo_models, tmp_path)
    out = merge_lora(base, adapter, tmp_path / "merged")

    merged: Any = AutoModelForCausalLM.from_pretrained(out)
    assert merged.config.vocab_size == vocab
    assert merged.get_input_embeddings().weight.shape[0] == vocab
    assert merged.get_output_embeddings().weight.shape[0] == vocab
    assert len(AutoTokenizer.from_pretrained(out)) == vocab

    resized = LlamaForCausalLM.from_pretrained(base)
    resized.resize_token_embeddings(vocab, mean_resizing=False)
    reference = PeftModel.from_pretrained(resized, adapter)
    ids = [[5, 17, vocab - 1, 42, vocab - 20, 99]]  # new tokens included
    assert torch.allclose(logits(merged, ids), logits(reference, ids), atol=1e-5)


def test_failed_merge_leaves_no_output_and_keeps_an_old_one(demo_models: DemoModels, tmp_path: Path) -> None:
    broken = tmp_path / "broken-adapter"
    shutil.copytree(demo_models.adapters["lora-a"], broken)
    (broken / "adapter_model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    out = tmp_path / "merged"
    with pytest.raises(WeightsError, match="could not load the adapter"):
        merge_lora(demo_models.base, broken, out)
    assert not out.exists()
    assert leftovers(tmp_path) == []

    out.mkdir()
    (out / "previous.txt").write_text("an earlier, complete result")
    with pytest.raises(WeightsError, match="already exists and is not empty"):
        merge_lora(demo_models.base, demo_models.adapters["lora-a"], out)
    with pytest.raises(WeightsError):
        merge_lora(demo_models.base, broken, out, force=True)
    assert [p.name for p in out.iterdir()] == ["previous.txt"]
    assert leftovers(tmp_path) == []


# --- delta weights ---------------------------------------------------------------------------------------------


def to_legacy_bin(src: Path, dst: Path) -> Path:
    """The same sharded checkpoint as pytorch_model-*.bin files with their index."""
    dst.mkdir()
    weight_map = {}
    for number, file in enumerate(sorted(src.glob("*.safetensors")), start=1):
        name = f"pytorch_model-{number:05d}.bin"
        tensors = load_file(file)
        torch.save(tensors, dst / name)
        weight_map.update(dict.fromkeys(tensors, name))
    (dst / "pytorch_model.bin.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    shutil.copy(src / "config.json", dst / "config.json")
    return dst


@pytest.fixture(scope="module")
def sharded(demo_models: DemoModels, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The demo base and its merged lora-a variant, each saved as several small safetensors shards."""
    root = tmp_path_factory.mktemp("sharded")
    merged = merge_lora(demo_models.base, demo_models.adapters["lora-a"], root / "merged")
    for name, source in (("base", demo_models.base), ("target", merged)):
        AutoModelForCausalLM.from_pretrained(source).save_pretrained(root / name, max_shard_size="60KB")
        AutoTokenizer.from_pretrained(source).save_pretrained(root / name)
    return {"base": root / "base", "target": root / "target"}


def test_delta_round_trip_is_bit_exact_on_sharded_safetensors(sharded: dict[str, Path], tmp_path: Path) -> None:
    target_shards = sorted(p.name for p in sharded["target"].glob("*.safetensors"))
    assert len(target_shards) >= 3

    report = make_delta(sharded["base"], sharded["target"], tmp_path / "delta")
    assert sorted(p.name for p in (tmp_path / "delta").glob("*.safetensors")) == target_shards
    apply_delta(sharded["base"], tmp_path / "delta", tmp_path / "rebuilt")

    rebuilt = tmp_path / "rebuilt"
    assert_bit_identical(tensors_of(rebuilt), tensors_of(sharded["target"]))
    assert sorted(p.name for p in rebuilt.glob("*.safetensors")) == target_shards
    index = json.loads((rebuilt / "model.safetensors.index.json").read_text())
    assert (
        index["weight_map"]
        == json.loads((sharded["target"] / "model.safetensors.index.json").read_text())["weight_map"]
    )
    assert (rebuilt / "config.json").is_file() and (rebuilt / "tokenizer.json").is_file()
    assert report.tensors == len(tensors_of(sharded["target"]))
    model = AutoModelForCausalLM.from_pretrained(rebuilt)
    assert torch.equal(logits(model), logits(AutoModelForCausalLM.from_pretrained(sharded["target"])))


def test_delta_round_trip_is_bit_exact_on_legacy_bin(sharded: dict[str, Path], tmp_path: Path) -> None:
    base = to_legacy_bin(sharded["base"], tmp_path / "base-bin")
    target = to_legacy_bin(sharded["target"], tmp_path / "target-bin")
    make_delta(base, target, tmp_path / "delta")
    apply_delta(base, tmp_path / "delta", tmp_path / "rebuilt")
    assert sorted(p.name for p in (tmp_path / "rebuilt").glob("*.bin")) == sorted(p.name for p in target.glob("*.bin"))
    assert (tmp_path / "rebuilt" / "pytorch_model.bin.index.json").is_file()
    assert_bit_identical(tensors_of(tmp_path / "rebuilt"), tensors_of(target))


@pytest.mark.parametrize(("dtype", "stored"), [(torch.float32, "F64"), (torch.float16, "F32"), (torch.bfloat16, "F32")])
def test_rounding_deltas_are_stored_wider_and_stay_exact(tmp_path: Path, dtype: torch.dtype, stored: str) -> None:
    gen = torch.Generator().manual_seed(0)
    base = {"w": torch.randn(64, 64, generator=gen).to(dtype), "n": torch.ones(64, dtype=dtype)}
    # Unrelated values: target - base rounds in the target's dtype for a good share of the elements.
    target = {"w": (torch.randn(64, 64, generator=gen) * 100).to(dtype), "n": torch.ones(64, dtype=dtype) * 2}
    write_checkpoint(tmp_path / "base", base)
    write_checkpoint(tmp_path / "target", target)

    report = make_delta(tmp_path / "base", tmp_path / "target", tmp_path / "delta")
    assert report.widened == ["w"]
    with safe_open(tmp_path / "delta" / "model.safetensors", "pt") as f:
        assert f.get_slice("w").get_dtype() == stored
        assert f.get_slice("n").get_dtype() == {torch.float32: "F32", torch.float16: "F16"}.get(dtype, "BF16")
    apply_delta(tmp_path / "base", tmp_path / "delta", tmp_path / "rebuilt")
    assert_bit_identical(tensors_of(tmp_path / "rebuilt"), target)


def test_compact_delta_keeps_the_targets_dtype_and_counts_rounded_elements(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(1)
    write_checkpoint(tmp_path / "base", {"w": torch.randn(64, 64, generator=gen)})
    target = torch.randn(64, 64, generator=gen) * 100
    write_checkpoint(tmp_path / "target", {"w": target})

    report = make_delta(tmp_path / "base", tmp_path / "target", tmp_path / "delta", exact=False)
    assert report.widened == [] and report.inexact_elements > 0
    apply_delta(tmp_path / "base", tmp_path / "delta", tmp_path / "rounded")
    rounded = tensors_of(tmp_path / "rounded")["w"]
    assert rounded.dtype == torch.float32 and torch.allclose(rounded, target, rtol=0, atol=1e-4)
    assert 0 < int((rounded != target).sum()) == report.inexact_elements


def test_full_weights_given_as_a_delta_are_refused(sharded: dict[str, Path], tmp_path: Path) -> None:
    """WizardVicunaLM was long taken for a delta: adding full weights to the base must not happen silently."""
    args = ["apply-delta", "--base", str(sharded["base"]), "--delta", str(sharded["target"])]
    with pytest.raises(WeightsError, match=r"holds full weights, not a delta: .*serve it as it is \(form: full\)"):
        apply_delta(sharded["base"], sharded["target"], tmp_path / "out")
    assert main([*args, "--out", str(tmp_path / "out"), "--quiet"]) == 2 and not (tmp_path / "out").exists()


def test_a_full_fine_tunes_delta_is_not_taken_for_full_weights(tmp_path: Path) -> None:
    """Every tensor moved a little, as in a full fine-tune (Vicuna's deltas): the delta is nearly orthogonal."""
    gen = torch.Generator().manual_seed(5)
    base = {f"layer{i}.w": torch.randn(128, 64, generator=gen) for i in range(3)}
    target = {name: t + 0.01 * torch.randn(t.shape, generator=gen) for name, t in base.items()}
    write_checkpoint(tmp_path / "base", base)
    write_checkpoint(tmp_path / "target", target)
    make_delta(tmp_path / "base", tmp_path / "target", tmp_path / "delta")
    apply_delta(tmp_path / "base", tmp_path / "delta", tmp_path / "rebuilt")
    assert_bit_identical(tensors_of(tmp_path / "rebuilt"), target)


def test_a_v0_delta_with_an_added_pad_row_needs_pad_vocab(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gen = torch.Generator().manual_seed(2)
    vocab = ("model.embed_tokens.weight", "lm_head.weight")
    base = {name: torch.randn(10, 4, generator=gen).half() for name in vocab} | {"w": torch.randn(3, 3).half()}
    delta = {name: torch.randn(11, 4, generator=gen).half() for name in vocab} | {"w": torch.randn(3, 3).half()}
    write_checkpoint(tmp_path / "llama-7b", base)
    write_checkpoint(tmp_path / "vicuna-7b-delta-v0", delta)
    args = ["apply-delta", "--base", str(tmp_path / "llama-7b"), "--delta", str(tmp_path / "vicuna-7b-delta-v0")]
    assert main([*args, "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has shape [11, 4] in the delta but [10, 4] in the base" in err
    assert "pass --pad-vocab" in err and not (tmp_path / "out").exists()

    assert main([*args, "--out", str(tmp_path / "out"), "--quiet", "--pad-vocab"]) == 0
    rebuilt = tensors_of(tmp_path / "out")
    for name in vocab:  # FastChat's v0 tool: the base zero-padded to the delta's rows, then the delta added
        padded = torch.cat([base[name], torch.zeros(1, 4, dtype=torch.float16)])
        assert torch.equal(rebuilt[name], (padded.float() + delta[name].float()).half())
    assert torch.equal(rebuilt["w"], (base["w"].float() + delta["w"].float()).half())
    write_checkpoint(tmp_path / "wider", {**delta, "w": torch.randn(3, 4).half()})
    with pytest.raises(WeightsError, match=r"'w' has shape \[3, 4\] in the delta but \[3, 3\] in the base$"):
        apply_delta(tmp_path / "llama-7b", tmp_path / "wider", tmp_path / "out2", pad_vocab=True)


def write_checkpoint(folder: Path, tensors: dict[str, torch.Tensor]) -> Path:
    folder.mkdir()
    save_file(tensors, folder / "model.safetensors")
    return folder


def test_shape_mismatch_and_missing_tensor_are_named(tmp_path: Path) -> None:
    base = write_checkpoint(tmp_path / "base", {"model.w": torch.zeros(2, 3), "model.b": torch.zeros(3)})
    wide = write_checkpoint(tmp_path / "wide", {"model.w": torch.zeros(3, 3)})
    extra = write_checkpoint(tmp_path / "extra", {"model.b": torch.zeros(3), "model.extra": torch.zeros(1)})

    with pytest.raises(WeightsError, match=r"'model\.w' has shape \[3, 3\] in the delta but \[2, 3\] in the base"):
        apply_delta(base, wide, tmp_path / "out")
    with pytest.raises(WeightsError, match=r"'model\.w' has shape \[3, 3\] in the target but \[2, 3\] in the base"):
        make_delta(base, wide, tmp_path / "out")
    with pytest.raises(WeightsError, match=r"'model\.extra' is missing from the base"):
        apply_delta(base, extra, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert leftovers(tmp_path) == []


# --- XOR patches -----------------------------------------------------------------------------------------------


def point_alpaca_xor(data: bytes, key: bytes, piece: int) -> bytes:
    """The reference key stream, read literally off point-alpaca's decrypt loop: a `piece` of data, a `piece` read
    of the key; a short key read is repeated (numpy 'wrap' padding); an empty one means seek to the key's start."""
    out, pos = bytearray(), 0
    for start in range(0, len(data), piece):
        chunk = np.frombuffer(data[start : start + piece], dtype=np.uint8)
        read = key[pos : pos + piece]
        if not read:
            pos, read = 0, key[:piece]
        pos += len(read)
        k = np.frombuffer(read, dtype=np.uint8)
        k = np.pad(k, (0, len(chunk) - len(k)), mode="wrap") if len(k) < len(chunk) else k[: len(chunk)]
        out += (chunk ^ k).tobytes()
    return bytes(out)


@pytest.mark.parametrize(
    ("piece", "key_size", "sizes"),
    [
        (PIECE, 2 * PIECE + 12345, {"pytorch_model.bin": 6 * PIECE + 777, "config.json": 1000, "exact.bin": PIECE}),
        (64, 150, {"long.bin": 1000, "short.bin": 17, "empty.txt": 0}),
    ],
    ids=["10MiB-pieces-file-longer-than-key", "small-pieces-many-restarts"],
)
def test_the_container_is_byte_identical_to_the_reference(
    tmp_path: Path, piece: int, key_size: int, sizes: dict[str, int]
) -> None:
    rng = np.random.default_rng(7)
    key = rng.bytes(key_size)  # not a multiple of the piece: its last read is short and repeats
    base = tmp_path / "consolidated.00.pth"
    base.write_bytes(key)
    plain = tmp_path / "plain"
    plain.mkdir()
    files = {name: rng.bytes(size) for name, size in sizes.items()}
    for name, data in files.items():
        (plain / name).write_bytes(data)

    report = encrypt_files(plain, base, tmp_path / "enc", tmp_path / "checksums.md5", piece=piece)
    for name, data in files.items():
        sha = hashlib.sha256(data).hexdigest()
        released = (tmp_path / "enc" / f"{name}.{sha}.enc").read_bytes()
        assert released == hashlib.sha256(data).digest() + point_alpaca_xor(data, key, piece)
    assert sorted(report.files) == sorted(f"{n}.{hashlib.sha256(d).hexdigest()}.enc" for n, d in files.items())

    decrypted = xor_files(tmp_path / "enc", base, tmp_path / "dec", tmp_path / "checksums.md5", piece=piece)
    for name, data in files.items():
        assert (tmp_path / "dec" / name).read_bytes() == data
    assert read_checksums(tmp_path / "checksums.md5") == decrypted.plain_md5 == report.plain_md5


@pytest.fixture
def released(tmp_path: Path) -> tuple[Path, Path, str]:
    """An encrypted release of a real PyTorch .bin (a zip archive) and its key; returns (folder, key, name)."""
    plain = tmp_path / "plain"
    plain.mkdir()
    torch.save({"w": torch.arange(40000, dtype=torch.float32)}, plain / "pytorch_model.bin")
    key = tmp_path / "consolidated.00.pth"
    key.write_bytes(np.random.default_rng(8).bytes(50_000))
    report = encrypt_files(plain, key, tmp_path / "enc", tmp_path / "enc" / "md5sum.txt")  # a list inside the output
    assert read_checksums(tmp_path / "enc" / "md5sum.txt") == report.plain_md5
    return tmp_path / "enc", key, report.files[0]


def test_a_wrong_key_file_is_named_as_such(
    released: tuple[Path, Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, _, _ = released
    wrong = tmp_path / "other.pth"
    wrong.write_bytes(np.random.default_rng(9).bytes(50_000))
    args = ["xor-decrypt", "--encrypted", str(folder), "--base", str(wrong), "--out", str(tmp_path / "dec"), "--quiet"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: wrong base file: pytorch_model.bin.")
    assert not (tmp_path / "dec").exists() and leftovers(tmp_path) == []


def test_a_wrong_key_that_is_itself_a_torch_file(tmp_path: Path) -> None:
    """Two torch files share their zip header, which cancels out: only the key's md5 tells such a key apart."""
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"], "vocab_size": 32000}))
    torch.save({"w": torch.arange(40000, dtype=torch.float32)}, plain / "pytorch_model-00001-of-00002.bin")
    right, wrong = tmp_path / "7B" / "consolidated.00.pth", tmp_path / "13B" / "consolidated.00.pth"
    for key in (right, wrong):
        key.parent.mkdir()
        torch.save({"tok_embeddings.weight": torch.randn(300, 100)}, key)
    encrypt_files(plain, right, tmp_path / "enc")
    with pytest.raises(WeightsError, match=r"either .* is not the original \(pass --base-md5 .*\) or the download"):
        xor_files(tmp_path / "enc", wrong, tmp_path / "dec")
    original = hashlib.md5(right.read_bytes()).hexdigest()
    with pytest.raises(WeightsError, match=rf"^wrong base file: {re.escape(str(wrong))} has md5 \w+, not {original}"):
        xor_files(tmp_path / "enc", wrong, tmp_path / "dec", base_md5=original)
    report = xor_files(tmp_path / "enc", right, tmp_path / "dec", base_md5=original)
    assert sorted(report.files) == ["config.json", "pytorch_model-00001-of-00002.bin"]


def test_a_cut_download_and_a_renamed_file_are_named_as_such(released: tuple[Path, Path, str], tmp_path: Path) -> None:
    folder, key, name = released
    whole = (folder / name).read_bytes()
    (folder / name).write_bytes(whole[: len(whole) // 2])
    key_md5 = hashlib.md5(key.read_bytes()).hexdigest()
    with pytest.raises(WeightsError, match=r"is incomplete or damaged \([\d,]+ bytes\): the base file is the orig"):
        xor_files(folder, key, tmp_path / "dec", base_md5=key_md5)
    (folder / name).write_bytes(whole[:20])
    with pytest.raises(WeightsError, match="shorter than its 32-byte header"):
        xor_files(folder, key, tmp_path / "dec")
    (folder / name).write_bytes(whole)
    (folder / name).rename(folder / f"pytorch_model.bin.{'0' * 64}.enc")
    with pytest.raises(WeightsError, match="the sha256 in its name is not the one in its header"):
        xor_files(folder, key, tmp_path / "dec")
    (folder / f"pytorch_model.bin.{'0' * 64}.enc").rename(folder / "pytorch_model.bin.enc")
    with pytest.raises(WeightsError, match=r"not named NAME\.<sha256>\.enc"):
        xor_files(folder, key, tmp_path / "dec")
    assert not (tmp_path / "dec").exists()


def test_the_model_cards_md5s_are_checked_too(released: tuple[Path, Path, str], tmp_path: Path) -> None:
    folder, key, name = released
    card = tmp_path / "card-md5.txt"  # the card's `md5sum ./*` lines, pasted: the downloads' md5s
    card.write_text(f"{hashlib.md5((folder / name).read_bytes()).hexdigest()}  ./{name}\n", encoding="utf-8")
    good = xor_files(folder, key, tmp_path / "dec", card).plain_md5["pytorch_model.bin"]
    whole = (folder / name).read_bytes()
    (folder / name).write_bytes(whole[:-1000])
    with pytest.raises(WeightsError, match=r"not the model card's .*: the download is damaged or cut"):
        xor_files(folder, key, tmp_path / "dec3", card)
    (folder / name).write_bytes(whole)
    args = ["xor-decrypt", "--encrypted", str(folder), "--base", str(key), "--quiet", "--force"]
    assert main([*args, "--out", str(tmp_path / "dec"), "--md5", f"pytorch_model.bin={good}"]) == 0
    with pytest.raises(WeightsError, match=r"its md5 .* is not the model card's"):
        xor_files(folder, key, tmp_path / "dec2", md5s={"pytorch_model.bin": "0" * 32})
    with pytest.raises(WeightsError, match=r"tokenizer\.model: listed with an md5 but not in"):
        xor_files(folder, key, tmp_path / "dec2", md5s={"tokenizer.model": good})


# --- command line ----------------------------------------------------------------------------------------------


def test_terminated_apply_delta_leaves_no_output(tmp_path: Path) -> None:
    for name in ("base", "delta"):
        (tmp_path / name).mkdir()
        for shard in range(8):  # 64 MB, so the work usually outlasts the time it takes to notice that it started
            save_file({f"layer{shard}.w": torch.zeros(2048, 1024)}, tmp_path / name / f"model-{shard:05d}.safetensors")
    command = [sys.executable, "-m", "backends.weights", "apply-delta", "--base", str(tmp_path / "base")]
    command += ["--delta", str(tmp_path / "delta"), "--out", str(tmp_path / "out"), "--quiet"]
    for _attempt in range(5):  # on a busy machine a run may finish before it is seen running: then run it again
        shutil.rmtree(tmp_path / "out", ignore_errors=True)
        proc = subprocess.Popen(command, cwd=REPO)
        deadline = time.monotonic() + 120
        while not leftovers(tmp_path) and proc.poll() is None:  # the staging folder appears once it really started
            assert time.monotonic() < deadline
            time.sleep(0.002)
        proc.send_signal(signal.SIGTERM)
        if proc.wait(timeout=120) == 128 + signal.SIGTERM:
            break
    else:
        pytest.fail("apply-delta always finished before it could be terminated")
    assert not (tmp_path / "out").exists()
    assert leftovers(tmp_path) == []


def test_cli_reports_a_bad_path_in_one_line_with_exit_code_2(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "backends.weights", "apply-delta", "--base", str(tmp_path / "missing")]
    result = subprocess.run(
        [*command, "--delta", str(tmp_path), "--out", str(tmp_path / "out")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert "base checkpoint" in result.stderr and "missing" in result.stderr


# --- tokenizer.model-only folders (LLaMA-1 bases, Chinese-Alpaca, decrypted BELLE-LLaMA) ------------------------


def test_a_tokenizer_model_only_folder_merges_and_serves(tmp_path: Path) -> None:
    from backends.local import LocalModelPool, LocalSpec, ModelLoadError

    base = llama1_folder(tmp_path / "llama-7b-hf", sentencepiece_model([*TEXT, *CHINESE], 400), seed=4)
    assert not (base / "tokenizer.json").exists()
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(LlamaForCausalLM.from_pretrained(base), lora).save_pretrained(str(tmp_path / "adapter"))
    merged = merge_lora(base, tmp_path / "adapter", tmp_path / "merged")
    sample = "Bonjour, 你好 ! The quick fox."  # the base's tokenizer goes along (saved as tokenizer.json)
    assert (
        AutoTokenizer.from_pretrained(merged)(sample)["input_ids"]
        == AutoTokenizer.from_pretrained(base)(sample)["input_ids"]
    )

    pool = LocalModelPool()
    try:
        with pytest.raises(ModelLoadError, match="has no chat template of its own; name its prompt format"):
            pool.load([LocalSpec("merged", str(merged))])
        folders = {"base": base, "merged": merged}
        backends = pool.load([LocalSpec(name, str(path), template="vicuna_v1.1") for name, path in folders.items()])
        ask = [Message(role="user", content="Bonjour, 你好 !")]
        assert backends["base"].render(ask) == prompts.render("vicuna_v1.1", ask)

        async def answer(name: str) -> str:
            params = GenerationParams(max_new_tokens=6, seed=1)
            return "".join([c.text async for c in backends[name].stream(ask, params)])

        assert asyncio.run(answer("base")) and asyncio.run(answer("merged"))
    finally:
        pool.close()
