"""Close the loop: train a LoRA adapter with TRL's DPOTrainer on a Corral `dpo` export, ready to join the arena.

    python -m arena export --format dpo --out votes.jsonl
    python examples/train_dpo.py --data votes.jsonl --base path/to/base-model --out adapters/my-dpo

TRL applies the tokenizer's chat template to the conversational rows (`prompt` / `chosen` / `rejected`). A base
whose tokenizer has no chat template gets the one of the Corral prompt format it is served with
(`--template vicuna_v1.1`, see `python -m prompts list`), so training and serving format prompts the same way.
Runs on a CPU for small models; on a GPU drop `--cpu` and raise the step count.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ["prompt", "chosen", "rejected"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(description="Train a LoRA adapter with DPO on a Corral dpo export.")
    p.add_argument("--data", type=Path, required=True, help="a `python -m arena export --format dpo` file")
    p.add_argument(
        "--base", required=True, help="the base model: a local folder (or a hub id where the hub is reachable)"
    )
    p.add_argument("--out", type=Path, required=True, help="where to save the adapter")
    p.add_argument("--template", help="a Corral prompt format for a tokenizer without a chat template")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--learning-rate", type=float, default=5e-5)
    p.add_argument("--beta", type=float, default=0.1, help="DPO's KL strength")
    p.add_argument("--max-length", type=int, default=512, help="tokens per prompt + answer")
    p.add_argument("--lora-r", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="CPU threads for torch")
    p.add_argument("--cpu", action="store_true", help="train on the CPU even if a GPU is present")
    return p.parse_args(argv)


class Refused(Exception):
    """The inputs cannot be trained on; the message is one sentence for the terminal."""


def main(argv: list[str] | None = None) -> int:
    """Train, save the adapter, and print the config entry that adds it to the arena."""
    args = parse_args(argv)
    try:
        if not args.data.is_file():
            raise Refused(f"there is no export at {args.data}")
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
        data = load_pairs(args.data)
        tokenizer = load_tokenizer(args.base, args.template)
    except Refused as exc:
        print(f"train_dpo: {exc}", file=sys.stderr)
        return 2
    steps, losses = train(args, data, tokenizer)
    (args.out / "training.json").write_text(
        json.dumps({"data": str(args.data), "pairs": data.num_rows, "steps": steps, "losses": losses}),
        encoding="utf-8",
    )
    print(f"Trained {steps} steps on {data.num_rows} pairs; losses {losses}", file=sys.stderr)
    print(f"Adapter saved to {args.out}. Add it to the arena's config:\n")
    entry = f"  - name: {args.out.name}\n    model: {args.base}\n    adapter: {args.out}"
    print(f"{entry}\n    description: DPO on arena votes")
    return 0


def load_pairs(path: Path) -> Any:
    """The export's preference columns as a datasets.Dataset; refuses an export with no pairs."""
    from datasets import load_dataset

    data = load_dataset("parquet" if path.suffix == ".parquet" else "json", data_files=str(path))["train"]
    if data.num_rows == 0:
        raise Refused("the export has no preference pairs yet; collect some votes first")
    return data.select_columns(COLUMNS)  # metadata (models, judge, language …) stays out of training


def load_tokenizer(base: str, template: str | None) -> Any:
    """The base model's tokenizer, with a Corral prompt format as its chat template when one is named."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=Path(base).is_dir())
    if template:
        sys.path.insert(0, str(ROOT))
        import prompts

        tokenizer.chat_template = prompts.export_source(template)
    if tokenizer.chat_template is None:
        raise Refused("the tokenizer has no chat template; give --template (see python -m prompts list)")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def train(args: argparse.Namespace, data: Any, tokenizer: Any) -> tuple[int, list[float]]:
    """Train a LoRA adapter with DPO and save it (and the tokenizer) to --out; returns (steps, losses)."""
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM
    from trl import DPOConfig, DPOTrainer  # type: ignore[attr-defined]

    model = AutoModelForCausalLM.from_pretrained(
        args.base, local_files_only=Path(args.base).is_dir(), dtype=torch.float32
    )
    lora = LoraConfig(
        r=args.lora_r,
        lora_alpha=2 * args.lora_r,
        lora_dropout=0.0,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
        task_type="CAUSAL_LM",
    )
    config = DPOConfig(
        output_dir=str(args.out / "checkpoints"),
        max_steps=args.steps,
        per_device_train_batch_size=args.batch_size,
        gradient_accumulation_steps=1,
        learning_rate=args.learning_rate,
        beta=args.beta,
        max_length=args.max_length,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        seed=args.seed,
        use_cpu=args.cpu,
        dataloader_num_workers=0,
    )
    trainer = DPOTrainer(model=model, args=config, train_dataset=data, processing_class=tokenizer, peft_config=lora)
    result = trainer.train()
    trained: Any = trainer.model  # the PeftModel wrapping the base: saving it writes the adapter only
    trained.save_pretrained(str(args.out))
    tokenizer.save_pretrained(str(args.out))
    losses = [round(e["loss"], 4) for e in trainer.state.log_history if "loss" in e]
    return int(result.global_step), losses


if __name__ == "__main__":
    raise SystemExit(main())
