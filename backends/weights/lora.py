"""Merging a LoRA adapter into its base model, including adapters that extend the vocabulary (Chinese-Alpaca)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors import SafetensorError

from backends.weights.errors import WeightsError, first_line
from backends.weights.staging import staged_output

log = logging.getLogger(__name__)

DType = Literal["float32", "float16", "bfloat16"]
DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "vocab.json")
# What loading a model, tokenizer or adapter raises for a bad or mismatched folder (size mismatches are RuntimeError).
_LOAD_ERRORS = (OSError, ValueError, RuntimeError, KeyError, SafetensorError)


def merge_lora(base: Path, adapter: Path, out: Path, *, dtype: DType = "float32", force: bool = False) -> Path:
    """Merge `adapter` into `base` and save a plain model (safetensors, config, tokenizer) to `out` for TGI/vLLM.

    When the adapter ships a tokenizer larger than the base's embeddings, the base is resized to it first, as
    adapters trained on an extended vocabulary expect; their `modules_to_save` (embed_tokens, lm_head) then replace
    the resized layers whole. The adapter's tokenizer is saved with the result, or the base's when it has none.
    """
    if dtype not in DTYPES:
        raise WeightsError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    if not (base / "config.json").is_file():
        raise WeightsError(f"the base model folder {base} does not exist or has no config.json")
    if not (adapter / "adapter_config.json").is_file():
        raise WeightsError(f"the adapter folder {adapter} does not exist or has no adapter_config.json")
    adapter_has_tokenizer = any((adapter / name).is_file() for name in TOKENIZER_FILES)
    with staged_output(out, force=force) as staging:
        tokenizer = _load(lambda: _tokenizer(adapter if adapter_has_tokenizer else base), "the tokenizer of", adapter)
        model = _load(lambda: _model(base, DTYPES[dtype]), "the base model", base)
        rows = int(model.get_input_embeddings().weight.shape[0])
        if adapter_has_tokenizer and len(tokenizer) > rows:
            log.info(
                "resizing the base embeddings from %d to %d tokens for the adapter's tokenizer", rows, len(tokenizer)
            )
            # The adapter's saved embed_tokens/lm_head overwrite the new rows, so mean-resizing (a covariance over
            # the whole matrix) would be wasted work.
            model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        merged = _load(lambda: _peft_merge(model, adapter), "the adapter", adapter)
        _untie_if_diverged(merged)
        merged.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
    return out


def _tokenizer(path: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def _model(path: Path, dtype: torch.dtype) -> Any:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=dtype)


def _peft_merge(model: Any, adapter: Path) -> Any:
    from peft import PeftModel

    return PeftModel.from_pretrained(model, adapter).merge_and_unload()


def _load(step: Callable[[], Any], what: str, path: Path) -> Any:
    try:
        return step()
    except _LOAD_ERRORS as exc:
        raise WeightsError(f"could not load {what} {path}: {first_line(exc)}") from exc


def _untie_if_diverged(model: Any) -> None:
    # An adapter may replace lm_head or embed_tokens alone; a config still saying "tied" would make every loader
    # silently copy one onto the other and undo the merge.
    inputs, outputs = model.get_input_embeddings(), model.get_output_embeddings()
    if outputs is None or not getattr(model.config, "tie_word_embeddings", False):
        return
    if inputs.weight is not outputs.weight and not torch.equal(inputs.weight, outputs.weight):
        model.config.tie_word_embeddings = False
