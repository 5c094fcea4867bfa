"""Builds the offline demo models: a tiny random-weight LLaMA base, its BPE tokenizer and two LoRA variants."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backends.weights.staging import staged_output

DEMO_VERSION = 1
CORPUS = Path(__file__).with_name("demo_corpus.txt")
MARKER = "corral-demo.json"
# ChatML, the demo tokenizer's own chat template (the `tokenizer` prompt template uses it).
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@dataclass(frozen=True)
class DemoModels:
    """Where the demo base model and its two adapters live."""

    base: Path
    adapters: dict[str, Path]


def demo_paths(root: Path) -> DemoModels:
    """The demo model layout under `root` (whether built or not)."""
    return DemoModels(
        base=root / "base",
        adapters={"lora-a": root / "lora-a", "lora-b": root / "lora-b"},
    )


def ensure_demo_models(root: Path) -> DemoModels:
    """Build the demo models under `root` unless a complete build of this version is already there."""
    paths = demo_paths(root)
    marker = root / MARKER
    if marker.exists() and json.loads(marker.read_text()).get("version") == DEMO_VERSION:
        return paths
    with staged_output(root, force=True) as staging:  # built beside the target: an interrupted build never counts
        _build(staging)
    return paths


def tiny_llama_config(tokenizer: Any, **overrides: Any) -> Any:
    """The demo base's `LlamaConfig` for `tokenizer` (its vocabulary and special tokens); `overrides` resize it."""
    from transformers import LlamaConfig

    sizes: dict[str, Any] = {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 2048,
        "initializer_range": 0.2,
        "tie_word_embeddings": True,
    }
    return LlamaConfig(
        vocab_size=len(tokenizer),
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **{**sizes, **overrides},
    )


def _build(out: Path) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaForCausalLM

    tokenizer = _train_tokenizer()
    tokenizer.save_pretrained(out / "base")
    torch.manual_seed(0)
    base = LlamaForCausalLM(tiny_llama_config(tokenizer))
    base.generation_config.eos_token_id = tokenizer.eos_token_id
    base.generation_config.pad_token_id = tokenizer.pad_token_id
    base.save_pretrained(out / "base")
    for seed, name in enumerate(("lora-a", "lora-b"), start=1):
        torch.manual_seed(seed)
        lora = LoraConfig(
            r=8,
            lora_alpha=32,
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
            init_lora_weights=False,  # random A and B, so each variant visibly differs from the base
            task_type="CAUSAL_LM",
        )
        fresh = LlamaForCausalLM.from_pretrained(out / "base")
        peft_model = get_peft_model(fresh, lora)
        peft_model.save_pretrained(str(out / name))
    (out / MARKER).write_text(json.dumps({"version": DEMO_VERSION}))


def _train_tokenizer() -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=640,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS.read_text(encoding="utf-8").splitlines(), trainer)
    fast = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=2048,
    )
    fast.chat_template = CHATML_TEMPLATE
    return fast


def main(argv: list[str] | None = None) -> int:
    """`python -m backends.demo DIR`: build the demo models into DIR (reused when already there)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m backends.demo", description=main.__doc__)
    parser.add_argument("out", type=Path, help="folder to build into, e.g. data/demo-models")
    paths = ensure_demo_models(parser.parse_args(argv).out)
    print(f"base: {paths.base}")
    for name, path in paths.adapters.items():
        print(f"adapter {name}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
