"""`python -m benchmarks.bench_serve`: backends.serve streaming speed and adapter memory, on this machine's CPU.

1. tokens/s of a streamed /generate_stream answer from `backends.serve` vs in-process `model.generate()` on the
   same random-weight LLaMA model, prompt and greedy decoding (target ratio >= 0.9);
2. resident memory of one server hosting the base + 3 LoRA adapters vs the base alone (target <= 1.1x).

Saves benchmarks/results/bench_serve.json; the last line printed is `stream_ratio=R memory_ratio=M`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "bench_serve.json"
PROMPT = "Explain, step by step, how a team chooses between two fine-tuned variants of a model."
NEW_TOKENS = 200
THREADS = 2
RUNS = 3


def build_models(root: Path) -> tuple[Path, list[Path]]:
    """A ~50M-parameter random LLaMA with the demo tokenizer, plus three LoRA adapters (r=16)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoTokenizer, LlamaForCausalLM

    from backends.demo import ensure_demo_models, tiny_llama_config

    demo = ensure_demo_models(root / "demo")
    tok = AutoTokenizer.from_pretrained(demo.base)
    config = tiny_llama_config(
        tok,
        hidden_size=512,
        intermediate_size=1408,
        num_hidden_layers=8,
        num_attention_heads=8,
        num_key_value_heads=8,
        initializer_range=0.02,  # LlamaConfig's default, not the demo's 0.2
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    base = root / "base"
    LlamaForCausalLM(config).save_pretrained(base)
    tok.save_pretrained(base)
    adapters = []
    for i in range(3):
        torch.manual_seed(i + 1)
        model = get_peft_model(
            LlamaForCausalLM.from_pretrained(base),
            LoraConfig(
                r=16,
                lora_alpha=32,
                target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                init_lora_weights=False,
                task_type="CAUSAL_LM",
            ),
        )
        path = root / f"lora-{i}"
        model.save_pretrained(str(path))
        adapters.append(path)
    return base, adapters


def in_process_tokens_per_s(base: Path) -> float:
    """Greedy `generate()` of exactly NEW_TOKENS tokens, best of RUNS."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(THREADS)
    tok = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base).eval()
    ids = tok(PROMPT, return_tensors="pt")
    best = 0.0
    with torch.inference_mode():
        model.generate(**ids, max_new_tokens=8, do_sample=False)  # warm-up
        for _ in range(RUNS):
            start = time.perf_counter()
            out = model.generate(**ids, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=False)
            elapsed = time.perf_counter() - start
            best = max(best, (out.shape[1] - ids["input_ids"].shape[1]) / elapsed)
    return best


def start_server(base: Path, adapters: list[Path], port: int, log: Path) -> subprocess.Popen[bytes]:
    """Run backends.serve and wait for /health."""
    cmd = [sys.executable, "-m", "backends.serve", "--model", str(base), "--port", str(port), "--threads", str(THREADS)]
    for i, path in enumerate(adapters):
        cmd += ["--adapter", f"lora-{i}={path}"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"backends.serve did not start: {log.read_text()[-2000:]}")


def streamed_tokens_per_s(port: int, adapter: str | None = None) -> tuple[float, int]:
    """Best-of-RUNS tokens/s of a streamed greedy answer, counted from request start to the last event."""
    params: dict[str, Any] = {"max_new_tokens": NEW_TOKENS}
    if adapter:
        params["adapter_id"] = adapter
    body = {"inputs": PROMPT, "parameters": params}
    url = f"http://127.0.0.1:{port}/generate_stream"
    httpx.post(url, json={"inputs": PROMPT, "parameters": {"max_new_tokens": 8}}, timeout=60)  # warm-up
    best, count = 0.0, 0
    for _ in range(RUNS):
        start = time.perf_counter()
        with httpx.stream("POST", url, json=body, timeout=120) as r:
            events = sum(1 for line in r.iter_lines() if line.startswith("data:"))
        elapsed = time.perf_counter() - start
        if events / elapsed > best:
            best, count = events / elapsed, events
    return best, count


def rss_mib(pid: int) -> float:
    """Resident memory of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def main() -> int:
    """Run both measurements, print them, save JSON, end with the headline line."""
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    from benchmarks.processes import free_port

    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        root = Path(tmp)
        base, adapters = build_models(root)
        local = in_process_tokens_per_s(base)
        port = free_port()
        proc = start_server(base, [], port, root / "alone.log")
        try:
            served, events = streamed_tokens_per_s(port)
            rss_alone = rss_mib(proc.pid)
        finally:
            proc.terminate()
            proc.wait()
        port = free_port()
        proc = start_server(base, adapters, port, root / "adapters.log")
        try:
            streamed_tokens_per_s(port, "lora-0")
            rss_adapters = rss_mib(proc.pid)
        finally:
            proc.terminate()
            proc.wait()
    result = {
        "machine": f"{os.cpu_count()} CPU cores, no GPU",
        "model": "random LLaMA, hidden 512, 8 layers (~50M parameters), fp32, demo BPE tokenizer",
        "threads": THREADS,
        "new_tokens": NEW_TOKENS,
        "in_process_generate_tokens_per_s": round(local, 1),
        "served_stream_tokens_per_s": round(served, 1),
        "served_stream_events": events,
        "stream_ratio": round(served / local, 3),
        "rss_base_alone_mib": round(rss_alone, 1),
        "rss_base_plus_3_adapters_mib": round(rss_adapters, 1),
        "memory_ratio": round(rss_adapters / rss_alone, 3),
        "targets": {"stream_ratio": ">= 0.9", "memory_ratio": "<= 1.1"},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    for key, value in result.items():
        print(f"{key}: {value}")
    print(f"stream_ratio={result['stream_ratio']} memory_ratio={result['memory_ratio']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
