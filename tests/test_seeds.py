"""Every seed model's config: the right template, and the path its card describes, run end to end on tiny stand-ins.

The published patches are simulated with the demo models: adapters are the demo LoRAs, the "fine-tuned"
model behind the delta and XOR releases is the demo base merged with a demo LoRA. Each config's own
`source.rebuild` command then rebuilds the servable folder, and the arena's backends load and run it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from safetensors.torch import load_file
from transformers import LlamaForCausalLM

import prompts
from arena.config import LocalModel, TgiModel, load_config, parse_config
from arena.wiring import local_spec
from backends.base import GenerationParams, Message
from backends.local import LocalModelPool
from backends.tgi import TgiBackend
from backends.weights import encrypt_files
from tests.support.gptq import old_gptq_state
from tests.support.helpers import ROOT, Process
from tests.support.standins import CHINESE, TEXT, extended_tokenizer, llama1_folder, lora_adapter, sentencepiece_model

SEEDS = sorted((ROOT / "configs" / "seeds").glob("*.yaml"))
# From ../shared/reference/seed-models.md: each seed model, its distribution form and prompt format.
EXPECTED = {
    "vigogne-2-7b-chat": ("full", "vigogne_chat_v2"),
    "vigogne-2-7b-chat-v1": ("full", "vigogne_chat_v1"),
    "vigogne-2-7b-instruct": ("full", "vigogne_instruct_en_v3"),
    "vigogne-7b-chat": ("full", "vigogne_chat_v1"),
    "vigogne-instruct-7b": ("lora", "vigogne_instruct_fr_v2"),
    "chinese-alpaca-7b": ("lora", "chinese_alpaca"),
    "belle-7b-2m": ("full", "belle"),
    "belle-llama-7b-2m": ("xor", "belle"),
    "belle-llama-7b-0.6m": ("xor", "belle"),
    "belle-llama-7b-2m-gptq-4bit": ("xor", "belle"),
    "belle-llama-7b-2m-gptq-8bit": ("xor", "belle"),
    "ko-vicuna-7b": ("full", "vicuna_v1.1"),
    "wizard-vicuna-13b": ("full", "vicuna_v1.1"),
}
ASK = [Message(role="user", content="Bonjour ! 你好 ! 안녕하세요 !")]
LLAMA_7B_MD5 = "6efc8dab194ab59e49cd24be5574d85e"  # Meta's checklist.chk for 7B/consolidated.00.pth
KEY = "llama-7b/consolidated.00.pth"
PARAMS = GenerationParams(max_new_tokens=6, seed=1)


def raw_models() -> list[dict[str, Any]]:
    return [m for path in SEEDS for m in yaml.safe_load(path.read_text())["models"]]


@dataclass(frozen=True)
class Published:
    """The models folder a team starts from, and what the encrypted and LoRA releases were made from."""

    models_dir: Path
    belle_plain: Path  # BELLE-LLaMA-7B-2M before encryption
    belle_single: Path  # BELLE-LLaMA-7B-0.6M before encryption (one file longer than the key)


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Published:
    """Scaled-down stand-ins with the published files' names, containers and layouts: a LLaMA-1 base as the
    Hugging Face conversion wrote it (tokenizer.model, two .bin shards), the Vigogne LoRA as adapter_model.bin,
    Chinese-Alpaca's LoRA with an extended tokenizer and whole embeddings, BELLE-LLaMA's NAME.<sha256>.enc files
    (the model and the two GPTQ .pt files) against a stand-in consolidated.00.pth."""
    root = tmp_path_factory.mktemp("seed-models")
    work = tmp_path_factory.mktemp("seed-work")
    vocab = sentencepiece_model(TEXT, 300)
    base = llama1_folder(root / "llama-7b-hf", vocab, seed=1)
    lora_adapter(base, root / "vigogne-instruct-7b", seed=2)
    chinese = extended_tokenizer(vocab, CHINESE, 360)
    lora_adapter(base, root / "chinese-alpaca-lora-7b", seed=3, tokenizer_model=chinese, modules_to_save=True)
    belle = llama1_folder(work / "belle-llama-7b-2m", vocab, seed=4, dtype=torch.float32)
    original = root / KEY
    original.parent.mkdir()
    torch.manual_seed(5)  # Meta's checkpoint is a torch file too; its size is no multiple of the 10 MiB pieces
    torch.save({"tok_embeddings.weight": torch.randn(300, 100).half()}, original)
    encrypt_files(belle, original, root / "belle-llama-7b-2m-enc")  # NAME.<sha256>.enc, as BelleGroup published
    # BELLE-LLaMA-7B-0.6M: one fp32 file, longer than the key (its key's short last read repeats, as in the release)
    single = work / "belle-llama-7b-0.6m"
    single.mkdir()
    torch.save(LlamaForCausalLM.from_pretrained(belle).state_dict(), single / "pytorch_model.bin")
    for side in belle.iterdir():
        if not side.name.startswith("pytorch_model"):
            (single / side.name).write_bytes(side.read_bytes())
    assert (single / "pytorch_model.bin").stat().st_size > original.stat().st_size
    encrypt_files(single, original, root / "belle-llama-7b-0.6m-enc")
    gptq = work / "gptq"
    gptq.mkdir()
    weights = LlamaForCausalLM.from_pretrained(belle).state_dict()
    for bits in (4, 8):
        torch.save(old_gptq_state(weights, bits, 128), gptq / f"llama7b-2m-{bits}bit-128g.pt")
    encrypt_files(gptq, original, root / "belle-llama-7b-2m-gptq-enc")
    return Published(models_dir=root, belle_plain=belle, belle_single=single)


def test_every_seed_model_has_a_config_with_the_right_form_and_template() -> None:
    found = {m["name"]: (m["source"]["form"], m["template"]) for m in raw_models()}
    assert found == EXPECTED
    assert all(m.get("license") for m in raw_models()), "every seed model states its license"


def test_rebuild_commands_then_every_config_loads_and_runs(published: Published) -> None:
    models_dir = published.models_dir
    for model in raw_models():
        rebuild = (model.get("source") or {}).get("rebuild")
        if not rebuild or not rebuild.startswith("python -m backends.weights"):
            continue  # downloads are not possible here; their stand-ins are already in place
        # the stand-in plays LLaMA-7B's consolidated.00.pth, so its md5 stands in for the original's
        rebuild = rebuild.replace(LLAMA_7B_MD5, hashlib.md5((models_dir / KEY).read_bytes()).hexdigest())
        for command in rebuild.replace("${models_dir}", str(models_dir)).split(" && "):
            args = shlex.split(command)
            result = subprocess.run([sys.executable, *args[1:], "--quiet"], cwd=ROOT, capture_output=True, text=True)
            assert result.returncode == 0, f"{model['name']}: {result.stderr}"
    configs = [load_config(path, variables={"models_dir": str(models_dir)}) for path in SEEDS]
    local = [m for c in configs for m in c.models if isinstance(m, LocalModel)]
    served_elsewhere = {n for n in EXPECTED if n.startswith("belle-llama-7b-2m-gptq")}  # TGI --quantize gptq
    assert {m.name for m in local} == {n for n, (form, _) in EXPECTED.items() if form != "full"} - served_elsewhere
    pool = LocalModelPool()
    try:
        backends = pool.load(
            [local_spec(m.model_copy(update={"dtype": "float32"})) for m in local]  # fp32: CPU tests
        )
        for m in local:
            # the configured Corral template renders the prompt (not the tokenizer's own ChatML)
            assert backends[m.name].render(ASK) == prompts.render(m.template, ASK)
            assert "<|im_start|>" not in backends[m.name].render(ASK)
            assert asyncio.run(_first_text(backends[m.name])), m.name
    finally:
        pool.close()
    for name, plain in (("belle-llama-7b-2m", published.belle_plain), ("belle-llama-7b-0.6m", published.belle_single)):
        for original in plain.iterdir():  # byte equality with the files BelleGroup encrypted
            assert (models_dir / name / original.name).read_bytes() == original.read_bytes(), original.name
    _assert_chinese_alpaca_as_its_reference_merges(models_dir)
    for bits in (4, 8):  # decrypted, then converted: g_idx added, settings written, config and tokenizer along
        served = models_dir / f"belle-llama-7b-2m-gptq-{bits}bit"
        assert not (models_dir / f"belle-llama-7b-2m-gptq-{bits}bit-pt" / f"llama7b-2m-{12 - bits}bit-128g.pt").exists()
        settings = json.loads((served / "quantize_config.json").read_text())
        assert (settings["bits"], settings["group_size"]) == (bits, 128)
        assert json.loads((served / "config.json").read_text())["quantization_config"] == settings
        converted = load_file(served / "model.safetensors")
        assert torch.equal(converted["model.layers.0.mlp.down_proj.g_idx"], torch.zeros(128, dtype=torch.int32))


def _assert_chinese_alpaca_as_its_reference_merges(models_dir: Path) -> None:
    """merge_llama_with_chinese_lora.py's way: the fp16 base resized to the extended tokenizer, the LoRA merged by
    peft, embed_tokens/lm_head taken whole from the adapter; the rebuilt folder must hold exactly those tensors."""
    from peft import PeftModel
    from transformers import AutoTokenizer

    adapter = models_dir / "chinese-alpaca-lora-7b"
    base = LlamaForCausalLM.from_pretrained(models_dir / "llama-7b-hf", dtype=torch.float16)
    base.resize_token_embeddings(len(AutoTokenizer.from_pretrained(adapter)), mean_resizing=False)
    reference = PeftModel.from_pretrained(base, adapter).merge_and_unload().state_dict()
    rebuilt = load_file(models_dir / "chinese-alpaca-7b-merged" / "model.safetensors")
    assert set(rebuilt) == set(reference) - {"lm_head.weight"} or set(rebuilt) == set(reference)
    for name, tensor in rebuilt.items():
        assert tensor.dtype == torch.float16 and torch.equal(tensor, reference[name]), name
    assert rebuilt["model.embed_tokens.weight"].shape[0] == len(AutoTokenizer.from_pretrained(adapter)) > 300


async def _first_text(backend: Any) -> str:
    return "".join([c.text async for c in backend.stream(ASK, PARAMS)])


def test_full_weight_seeds_stream_over_tgi_with_their_templates(serve: Process) -> None:
    tgi_entries = [m for m in raw_models() if m["backend"] == "tgi"]
    config = parse_config({"models": tgi_entries}, source=Path("seeds.yaml"), variables={"models_dir": "/models"})
    remote = [m for m in config.models if isinstance(m, TgiModel)]
    assert {m.name for m in remote} >= {"vigogne-2-7b-chat", "belle-7b-2m", "ko-vicuna-7b", "wizard-vicuna-13b"}
    for m in remote:
        # the served model is the demo base; what is under test is the config's path: tgi + its template
        backend = TgiBackend(name=m.name, urls=[serve.url], template=m.template)
        # what is checked: the seed's template renders the chat, and the tgi path streams without an error
        assert backend._prepare(ASK, PARAMS) == prompts.render(m.template, ASK), m.name
        asyncio.run(_first_text(backend))
