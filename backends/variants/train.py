"""Trains one style variant: a LoRA adapter on all linear layers, a few steps of supervised fine-tuning on CPU."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backends.variants import MARKER, Recipe, fingerprint
from backends.weights.staging import staged_output

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
IGNORE = -100  # label of prompt and padding positions: no loss there


@dataclass(frozen=True)
class StepReport:
    """Progress after one optimiser step."""

    step: int
    steps: int
    loss: float
    seconds: float


def build_variant(
    base: Path, recipe: Recipe, out: Path, *, progress: Callable[[StepReport], None] | None = None
) -> Path:
    """Train `recipe`'s adapter on `base` and write it to `out` (staged beside it, then renamed); returns `out`."""
    started = time.perf_counter()
    with staged_output(out, force=True) as staging:  # a stale adapter is replaced only once the new one is whole
        model, final_loss = _train(base, recipe, progress or (lambda _r: None))
        model.save_pretrained(str(staging))
        record = {
            "recipe": recipe.name,
            "style": recipe.style,
            "fingerprint": fingerprint(recipe, base),
            "steps": recipe.train.steps,
            "final_loss": round(final_loss, 4),
            "seconds": round(time.perf_counter() - started, 1),
        }
        (staging / MARKER).write_text(json.dumps(record, indent=2), encoding="utf-8")
    return out


def _train(base: Path, recipe: Recipe, progress: Callable[[StepReport], None]) -> tuple[Any, float]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    settings = recipe.train
    torch.manual_seed(settings.seed)
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    lora = LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=0.0,
        target_modules=LORA_TARGETS,
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, lora)
    peft_model.train()
    rows = [_tokenize(tokenizer, ex.user, ex.assistant) for ex in recipe.examples]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    trainable = [p for p in peft_model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(trainable, lr=settings.learning_rate, weight_decay=0.0)
    order = random.Random(settings.seed)
    batches = _batches(len(rows), settings.batch_size, settings.steps, order)
    loss_value = float("nan")
    started = time.perf_counter()
    for step, picked in enumerate(batches, start=1):
        input_ids, labels, mask = _collate([rows[i] for i in picked], pad)
        loss = peft_model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        optimiser.step()
        optimiser.zero_grad(set_to_none=True)
        loss_value = float(loss.item())
        progress(StepReport(step, settings.steps, loss_value, time.perf_counter() - started))
    peft_model.eval()
    return peft_model, loss_value


def _tokenize(tokenizer: Any, user: str, assistant: str) -> tuple[list[int], list[int]]:
    """Token ids of one chat and its labels (the answer and its end-of-turn only)."""
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": user}], add_generation_prompt=True, tokenize=False
    )
    full = tokenizer.apply_chat_template(
        [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}], tokenize=False
    )
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    full_ids = tokenizer(full, add_special_tokens=False)["input_ids"]
    labels = [IGNORE] * len(prompt_ids) + full_ids[len(prompt_ids) :]
    return full_ids, labels


def _batches(count: int, size: int, steps: int, rng: random.Random) -> list[list[int]]:
    """`steps` batches of `size` example indices, walking shuffled passes over the examples."""
    out: list[list[int]] = []
    pool: list[int] = []
    for _ in range(steps):
        batch: list[int] = []
        while len(batch) < min(size, count):
            if not pool:
                pool = list(range(count))
                rng.shuffle(pool)
            batch.append(pool.pop())
        out.append(batch)
    return out


def _collate(rows: list[tuple[list[int], list[int]]], pad: int) -> tuple[Any, Any, Any]:
    """Right-padded input ids, labels and attention mask tensors."""
    import torch

    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (row_ids, row_labels) in enumerate(rows):
        ids[i, : len(row_ids)] = torch.tensor(row_ids)
        labels[i, : len(row_labels)] = torch.tensor(row_labels)
        mask[i, : len(row_ids)] = 1
    return ids, labels, mask
