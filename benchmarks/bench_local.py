"""`python -m benchmarks.bench_local`: the local backend on the real default model, one stream vs an arena pair.

The default model (SmolLM2-135M-Instruct, converted from the installed wheel by `backends.default_model` into
--model-dir, reused when already there) is loaded by `LocalModelPool` with a LoRA adapter (r=8 on every linear
layer, random A and B, saved to a temporary folder), so a pair is base + adapter as in a battle; one torch thread.
Every stream continues the raw text "1, 2, … 20," (BOS added, no chat template) with arena sampling
(temperature 0.7, top_p 0.95, a seed per stream) for --tokens new tokens: the model keeps counting, so streams run
to the limit without ignoring EOS (the public `LocalBackend.generate` path is measured as the arena uses it); the
figures count the tokens actually streamed and the JSON says how many streams ended early.

1. single: tokens/s of one stream alone (base and adapter alternately), median of --repeats runs (S);
2. pair: two simultaneous streams (base + adapter), total tokens of both / wall time, median (P); R = P / S,
   target R >= 1.6 (one forward pass per step for both rows);
3. serve: `backends.serve` (same pool and decoder, --threads 1) hosting the model and the adapter, aggregate
   tokens/s of 1, 2 and 4 concurrent /generate_stream requests (alternating base and adapter), median.

Other processes on the same cores slow the wall-clock figures: the JSON also gives every figure per CPU second
of the measuring process (of the server, for serve), which such load disturbs less, and the load average.

Saves benchmarks/results/bench_local.json; the last line printed is `single_tok_s=S pair_tok_s=P pair_ratio=R`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.harness import ROOT, machine, proc_cpu_seconds, save
from benchmarks.processes import free_port, wait_for_port

DEFAULT_MODEL_DIR = ROOT / "data" / "models" / "smollm2-135m-instruct"
PROMPT = ", ".join(str(i) for i in range(1, 21)) + ","  # raw text: the model keeps counting, it does not stop
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def make_adapter(model_dir: Path, out: Path) -> Path:
    """A LoRA adapter with random A and B on every linear layer of the base (so it visibly changes the output)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    config = LoraConfig(r=8, target_modules=LORA_TARGETS, init_lora_weights=False, task_type="CAUSAL_LM")
    get_peft_model(base, config).save_pretrained(str(out))
    return out


async def stream_tokens(backend: Any, ids: list[int], params: Any) -> int:
    """Run one generation through `LocalBackend.generate`; the number of tokens it streamed."""
    count = 0
    async for ev in backend.generate(ids, params):
        if ev.token_id is not None:
            count += 1
    return count


async def in_process(model_dir: Path, adapter: Path, tokens: int, repeats: int) -> dict[str, Any]:
    """Single-stream and pair tokens/s through the real pool and decoder."""
    from backends.base import GenerationParams
    from backends.local import LocalModelPool, LocalSpec

    pool = LocalModelPool()
    try:
        started = time.perf_counter()
        backends = pool.load([LocalSpec("base", str(model_dir)), LocalSpec("lora", str(model_dir), str(adapter))])
        load_s = time.perf_counter() - started
        base, lora = backends["base"], backends["lora"]
        ids = base.encode(PROMPT, add_special_tokens=True)

        def params(seed: int) -> GenerationParams:
            return GenerationParams(max_new_tokens=tokens, temperature=0.7, top_p=0.95, seed=seed)

        await asyncio.gather(stream_tokens(base, ids, params(0)), stream_tokens(lora, ids, params(0)))  # warm-up
        single: list[tuple[float, float]] = []  # (tokens per wall second, tokens per CPU second of this process)
        pair: list[tuple[float, float]] = []
        short = 0
        for i in range(repeats):
            for backend in (base, lora) if i % 2 == 0 else (lora, base):
                t0, c0 = time.perf_counter(), time.process_time()
                n = await stream_tokens(backend, ids, params(i))
                single.append((n / (time.perf_counter() - t0), n / (time.process_time() - c0)))
                short += n < tokens
            t0, c0 = time.perf_counter(), time.process_time()
            both = await asyncio.gather(stream_tokens(base, ids, params(i)), stream_tokens(lora, ids, params(i)))
            pair.append((sum(both) / (time.perf_counter() - t0), sum(both) / (time.process_time() - c0)))
            short += sum(n < tokens for n in both)
    finally:
        pool.close()
    s, p = statistics.median(r for r, _ in single), statistics.median(r for r, _ in pair)
    s_cpu, p_cpu = statistics.median(c for _, c in single), statistics.median(c for _, c in pair)
    return {
        "load_seconds": round(load_s, 2),
        "prompt_tokens": len(ids),
        "single_tok_s_runs": [round(r, 2) for r, _ in single],
        "pair_tok_s_runs": [round(r, 2) for r, _ in pair],
        "single_tok_s": round(s, 2),
        "pair_tok_s": round(p, 2),
        "pair_ratio": round(p / s, 3),
        # the same runs per CPU second of this process: steadier when other processes share the cores
        "single_tok_per_cpu_s": round(s_cpu, 2),
        "pair_tok_per_cpu_s": round(p_cpu, 2),
        "pair_ratio_cpu": round(p_cpu / s_cpu, 3),
        "streams_ended_before_the_limit": short,
    }


async def serve_stream(http: httpx.AsyncClient, url: str, body: dict[str, Any]) -> int:
    """One /generate_stream request; the number of token events."""
    count = 0
    async with http.stream("POST", f"{url}/generate_stream", json=body) as resp:
        resp.raise_for_status()
        async for line in resp.aiter_lines():
            if line.startswith("data:") and '"token"' in line:
                count += 1
    return count


async def serve_rates(url: str, pid: int, tokens: int, repeats: int) -> dict[str, Any]:
    """Median aggregate tokens/s of 1, 2 and 4 concurrent streams (alternating base and adapter), also per CPU
    second of the server process `pid`."""

    def body(i: int) -> dict[str, Any]:
        parameters: dict[str, Any] = {"max_new_tokens": tokens, "temperature": 0.7, "top_p": 0.95, "seed": i}
        if i % 2:
            parameters["adapter_id"] = "lora"
        return {"inputs": PROMPT, "parameters": parameters}  # the server adds BOS to raw inputs

    figures: dict[str, Any] = {}
    async with httpx.AsyncClient(timeout=600) as http:
        await asyncio.gather(serve_stream(http, url, body(0)), serve_stream(http, url, body(1)))  # warm-up
        for n in (1, 2, 4):
            rates, per_cpu, short = [], [], 0
            for r in range(repeats):
                t0, c0 = time.perf_counter(), proc_cpu_seconds(pid)
                counts = await asyncio.gather(*(serve_stream(http, url, body(r + i)) for i in range(n)))
                rates.append(sum(counts) / (time.perf_counter() - t0))
                per_cpu.append(sum(counts) / (proc_cpu_seconds(pid) - c0))
                short += sum(c < tokens for c in counts)
            figures[f"concurrent_{n}_tok_s"] = round(statistics.median(rates), 2)
            figures[f"concurrent_{n}_runs"] = [round(v, 2) for v in rates]
            figures[f"concurrent_{n}_tok_per_cpu_s"] = round(statistics.median(per_cpu), 2)
            figures[f"concurrent_{n}_streams_ended_early"] = short
    return figures


def serve_figures(model_dir: Path, adapter: Path, tokens: int, repeats: int, workdir: Path) -> dict[str, Any]:
    """Start `backends.serve` (one torch thread) with the model and the adapter, and measure it."""
    port = free_port()
    log = workdir / "serve.log"
    cmd = [sys.executable, "-m", "backends.serve", "--model", str(model_dir), "--port", str(port), "--threads", "1"]
    cmd += ["--adapter", f"lora={adapter}"]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port(proc, port, log, timeout=180)
        return asyncio.run(serve_rates(f"http://127.0.0.1:{port}", proc.pid, tokens, repeats))
    finally:
        proc.terminate()
        proc.wait()


def main(argv: list[str] | None = None) -> int:
    """Measure, print, save; the last line holds the headline figures."""
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR, help="where the default model is converted")
    p.add_argument("--tokens", type=int, default=96, help="new tokens per stream")
    p.add_argument("--repeats", type=int, default=5, help="runs per figure (median)")
    p.add_argument("--no-serve", action="store_true", help="skip the backends.serve figures")
    p.add_argument("--quick", action="store_true", help="3 repeats of 48 tokens")
    args = p.parse_args(argv)
    tokens, repeats = (48, 3) if args.quick else (args.tokens, args.repeats)
    import torch

    from backends.default_model import ensure_default_model

    torch.set_num_threads(1)
    model_dir = ensure_default_model(args.model_dir, progress=lambda msg: print(msg, flush=True))
    with tempfile.TemporaryDirectory(prefix="bench-local-") as tmp:
        adapter = make_adapter(model_dir, Path(tmp) / "lora")
        local = asyncio.run(in_process(model_dir, adapter, tokens, repeats))
        serve: dict[str, Any] = {}
        if not args.no_serve:
            serve = serve_figures(model_dir, adapter, tokens, repeats, Path(tmp))
    result = {
        "machine": machine(),
        "load_average_at_end": [round(v, 2) for v in os.getloadavg()],  # other processes share these cores
        "model": "SmolLM2-135M-Instruct (default model), float32, + 1 LoRA adapter (r=8, all linear layers, random)",
        "torch_threads": 1,
        "new_tokens": tokens,
        "repeats": repeats,
        "sampling": {"temperature": 0.7, "top_p": 0.95, "eos": "honoured (counted tokens are the ones streamed)"},
        **local,
        "serve": serve,
        "targets": {"pair_ratio": ">= 1.6"},
    }
    path = save("bench_local", result)
    print(json.dumps(result, indent=2))
    print(f"saved {path.relative_to(path.parents[2])}")
    print(f"single_tok_s={result['single_tok_s']} pair_tok_s={result['pair_tok_s']} pair_ratio={result['pair_ratio']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
