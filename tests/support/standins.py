"""Scaled-down stand-ins laid out like the seed models' published files: LLaMA-1 folders as the Hugging Face
conversion wrote them (SentencePiece `tokenizer.model`, legacy `pytorch_model-0000N-of-0000M.bin` shards with an
index), LoRA adapters saved as `adapter_model.bin`, and Chinese-Alpaca's extended tokenizer."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from backends.demo import tiny_llama_config

TEXT = [
    "Bonjour, comment allez-vous ? Je vais bien, merci.",
    "Hello there, how are you? The quick brown fox jumps over the lazy dog.",
    "Le renard brun saute par-dessus le chien paresseux.",
]
CHINESE = ["你好，今天天气很好。", "我们一起去公园散步吧。", "中文词表扩充以后，每个汉字都有自己的词元。"]
TOKENIZER_CONFIG = {"tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}


def sentencepiece_model(texts: Iterable[str], vocab_size: int) -> bytes:
    """A small BPE SentencePiece model (LLaMA's ids: unk 0, bos 1, eos 2, no pad), as `tokenizer.model` bytes."""
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(list(texts) * 40), model_writer=model, vocab_size=vocab_size, model_type="bpe",
        byte_fallback=True, character_coverage=1.0, unk_id=0, bos_id=1, eos_id=2, pad_id=-1, minloglevel=2,
    )  # fmt: skip
    return model.getvalue()


def write_tokenizer(folder: Path, model: bytes) -> Any:
    """`tokenizer.model` + its config files, as LLaMA-1 folders ship them; returns the loaded tokenizer."""
    from transformers import AutoTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tokenizer.model").write_bytes(model)
    (folder / "tokenizer_config.json").write_text(json.dumps(TOKENIZER_CONFIG), encoding="utf-8")
    special = {k: v for k, v in TOKENIZER_CONFIG.items() if k != "tokenizer_class"}
    (folder / "special_tokens_map.json").write_text(json.dumps(special), encoding="utf-8")
    return AutoTokenizer.from_pretrained(folder)


def save_legacy_shards(state: dict[str, torch.Tensor], folder: Path, shards: int = 2) -> list[str]:
    """`pytorch_model-0000N-of-0000M.bin` files and `pytorch_model.bin.index.json`, as transformers 4 wrote them."""
    names = list(state)
    per = -(-len(names) // shards)
    files: list[str] = []
    weight_map: dict[str, str] = {}
    for index in range(shards):
        file = f"pytorch_model-{index + 1:05d}-of-{shards:05d}.bin"
        part = {name: state[name].contiguous() for name in names[index * per : (index + 1) * per]}
        torch.save(part, folder / file)
        weight_map |= dict.fromkeys(part, file)
        files.append(file)
    total = sum(t.numel() * t.element_size() for t in state.values())
    index_file = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / "pytorch_model.bin.index.json").write_text(json.dumps(index_file, indent=2), encoding="utf-8")
    return files


def llama1_folder(folder: Path, tokenizer_model: bytes, *, seed: int, dtype: torch.dtype = torch.float16) -> Path:
    """A LLaMA-1 Hugging Face folder: config, generation config, tokenizer.model and two legacy .bin shards."""
    from transformers import LlamaForCausalLM

    tokenizer = write_tokenizer(folder, tokenizer_model)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(tiny_llama_config(tokenizer, tie_word_embeddings=False))
    model.config.save_pretrained(folder)
    model.generation_config.save_pretrained(folder)
    save_legacy_shards({k: v.to(dtype) for k, v in model.state_dict().items()}, folder)
    return folder


def extended_tokenizer(base_model: bytes, more_text: Iterable[str], extra_vocab: int) -> bytes:
    """The base SentencePiece model with the pieces of another, trained on `more_text`, appended after its own
    (Chinese-LLaMA's way of extending LLaMA's 32,000 tokens to 49,954: every base id keeps its meaning)."""
    from sentencepiece import sentencepiece_model_pb2

    sp_pb2: Any = sentencepiece_model_pb2  # generated protobuf code: no type information
    base, extra = sp_pb2.ModelProto(), sp_pb2.ModelProto()
    base.ParseFromString(base_model)
    extra.ParseFromString(sentencepiece_model(more_text, extra_vocab))
    have = {piece.piece for piece in base.pieces}
    for piece in extra.pieces:
        if piece.piece not in have and piece.type == sp_pb2.ModelProto.SentencePiece.NORMAL:
            added = base.pieces.add()
            added.piece, added.score = piece.piece, 0.0
    return bytes(base.SerializeToString())


def lora_adapter(
    base: Path, out: Path, *, seed: int, tokenizer_model: bytes | None = None, modules_to_save: bool = False
) -> Path:
    """A LoRA adapter saved as `adapter_model.bin` (as 2023 peft did); with `tokenizer_model`, trained on a larger
    vocabulary whose embeddings and lm_head it carries whole (`modules_to_save`), and shipping that tokenizer."""
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaForCausalLM

    model = LlamaForCausalLM.from_pretrained(base, dtype=torch.float32)
    if tokenizer_model is not None:
        tokenizer = write_tokenizer(out, tokenizer_model)
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    config = LoraConfig(
        r=8,
        lora_alpha=16,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
        modules_to_save=["embed_tokens", "lm_head"] if modules_to_save else None,
        init_lora_weights=False,
        task_type="CAUSAL_LM",
    )
    torch.manual_seed(seed)
    peft_model = get_peft_model(model, config)
    with torch.no_grad():  # trained: the saved copies differ from the (resized) base
        for name, param in peft_model.named_parameters():
            if "modules_to_save" in name:
                param.add_(torch.randn_like(param) * 0.1)
    peft_model.save_pretrained(str(out), safe_serialization=False, save_embedding_layers=False)
    return out
