"""Peak memory and throughput of `apply-delta` on a generated multi-shard LLaMA-style safetensors checkpoint.

Run from the repository root: `python -m benchmarks.bench_weights`. It writes a random fp32 base and a delta of the
same layout (six shards, one per layer, ~340 MB per checkpoint by default) to a scratch folder, runs
`python -m backends.weights apply-delta` in a subprocess and takes its peak RSS from the kernel (the child's VmHWM
high-water mark, read as it exits) while sampling /proc for the anonymous/file-backed split. The fixed cost of the
interpreter, torch and the module is measured the same way on a subprocess that only imports them (`--help`), and
on one that applies a one-tensor delta; both are reported.

Headline: peak_rss_ratio = (peak RSS - import baseline) / largest shard (target <= 1.5); the raw ratio, which
includes the ~fixed import baseline and so depends on the shard size chosen here, is saved too. mb_per_s is output
megabytes (10^6 bytes) per second of the whole subprocess's wall time, start-up included.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

REPO = Path(__file__).resolve().parents[1]
# Runs the module's CLI unchanged, then records the kernel's high-water RSS (VmHWM) of this very process at exit.
# wait4's ru_maxrss would be simpler but is useless here: it also counts the pre-exec copy of this (torch-loaded)
# benchmark process that fork made, so every child "peaks" at the parent's size.
RUNNER = """
import atexit, runpy, sys
from pathlib import Path
report = Path(sys.argv[1])
def record():
    status = Path("/proc/self/status").read_text()
    report.write_text(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
atexit.register(record)
sys.argv = [sys.argv[2], *sys.argv[3:]]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""
RESULTS = REPO / "benchmarks" / "results" / "bench_weights.json"
TARGET_RATIO = 1.5


@dataclass
class Shape:
    """The generated model's dimensions."""

    layers: int = 6
    hidden: int = 1024
    intermediate: int = 2816
    vocab: int = 4096


@dataclass
class RunStats:
    """What one measured subprocess did."""

    returncode: int
    seconds: float
    peak_rss: int
    sampled_peak_rss: int = 0
    anon_at_peak: int = 0
    file_at_peak: int = 0
    stderr: str = ""
    samples: int = 0


def layer_tensors(shape: Shape, layer: int, gen: torch.Generator, scale: float) -> dict[str, torch.Tensor]:
    """One LLaMA decoder layer's weights (HF names), random fp32."""
    h, m, p = shape.hidden, shape.intermediate, f"model.layers.{layer}"
    sizes = {
        f"{p}.self_attn.q_proj.weight": (h, h),
        f"{p}.self_attn.k_proj.weight": (h, h),
        f"{p}.self_attn.v_proj.weight": (h, h),
        f"{p}.self_attn.o_proj.weight": (h, h),
        f"{p}.mlp.gate_proj.weight": (m, h),
        f"{p}.mlp.up_proj.weight": (m, h),
        f"{p}.mlp.down_proj.weight": (h, m),
        f"{p}.input_layernorm.weight": (h,),
        f"{p}.post_attention_layernorm.weight": (h,),
    }
    return {name: torch.randn(size, generator=gen) * scale for name, size in sizes.items()}


def write_checkpoint(folder: Path, shape: Shape, seed: int, scale: float) -> list[Path]:
    """Write a sharded checkpoint one shard at a time (never the whole model in memory); returns the shard paths."""
    folder.mkdir(parents=True)
    gen = torch.Generator().manual_seed(seed)
    weight_map: dict[str, str] = {}
    shards = []
    for layer in range(shape.layers):
        tensors = layer_tensors(shape, layer, gen, scale)
        if layer == 0:
            tensors["model.embed_tokens.weight"] = torch.randn(shape.vocab, shape.hidden, generator=gen) * scale
        if layer == shape.layers - 1:
            tensors["model.norm.weight"] = torch.randn(shape.hidden, generator=gen) * scale
            tensors["lm_head.weight"] = torch.randn(shape.vocab, shape.hidden, generator=gen) * scale
        name = f"model-{layer + 1:05d}-of-{shape.layers:05d}.safetensors"
        save_file(tensors, folder / name, metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(tensors, name))
        shards.append(folder / name)
        del tensors
    total = sum(p.stat().st_size for p in shards)
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": shape.hidden}))
    return shards


def _status_kib(pid: int) -> dict[str, int]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    values = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
            values[key] = int(rest.split()[0])
    return values


def measure(module: str, args: Sequence[str], scratch: Path, interval: float = 0.005) -> RunStats:
    """Run `python -m module args`, sampling /proc while it runs; the peak is the child's own VmHWM at exit."""
    report = scratch / f"vmhwm-{time.monotonic_ns()}"
    command = [sys.executable, "-c", RUNNER, str(report), module, *args]
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    best: dict[str, int] = {}
    samples = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal best, samples
        while not done.is_set():
            status = _status_kib(proc.pid)
            if status.get("VmRSS", 0) > best.get("VmRSS", 0):
                best = status
            samples += 1
            time.sleep(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    assert proc.stderr is not None
    stderr = proc.stderr.read().decode(errors="replace")  # drain, so a chatty child cannot block on a full pipe
    returncode = proc.wait()
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    return RunStats(
        returncode=returncode,
        seconds=seconds,
        peak_rss=int(report.read_text()) * 1024 if report.is_file() else 0,
        sampled_peak_rss=best.get("VmRSS", 0) * 1024,
        anon_at_peak=best.get("RssAnon", 0) * 1024,
        file_at_peak=best.get("RssFile", 0) * 1024,
        stderr=stderr,
        samples=samples,
    )


def check_output(base: Path, delta: Path, out: Path, shards: Sequence[Path]) -> int:
    """Spot-check that out == base + delta on the first tensor of every shard; returns how many were checked."""
    checked = 0
    for shard in shards:
        with (
            safe_open(out / shard.name, "pt") as o,
            safe_open(base / shard.name, "pt") as b,
            safe_open(delta / shard.name, "pt") as d,
        ):
            name = next(iter(o.keys()))
            if not torch.equal(o.get_tensor(name), b.get_tensor(name) + d.get_tensor(name)):
                raise SystemExit(f"apply-delta output is wrong for {name}")
            checked += 1
    return checked


def run(workdir: Path, shape: Shape) -> dict[str, object]:
    """Generate the checkpoints, measure the baseline and apply-delta, and return the figures."""
    base_shards = write_checkpoint(workdir / "base", shape, seed=1, scale=0.02)
    write_checkpoint(workdir / "delta", shape, seed=2, scale=0.001)
    baseline = measure("backends.weights", ["--help"], workdir)
    # Also the same command on a one-tensor checkpoint: start-up plus the first torch operations, no real data.
    for name in ("tiny-base", "tiny-delta"):
        (workdir / name).mkdir()
        save_file({"w": torch.zeros(16)}, workdir / name / "model.safetensors")
    tiny_args = ["apply-delta", "--base", str(workdir / "tiny-base"), "--delta", str(workdir / "tiny-delta")]
    tiny = measure("backends.weights", [*tiny_args, "--out", str(workdir / "tiny-out"), "--quiet"], workdir)
    args = ["apply-delta", "--base", str(workdir / "base"), "--delta", str(workdir / "delta")]
    stats = measure("backends.weights", [*args, "--out", str(workdir / "out"), "--quiet"], workdir)
    if stats.returncode != 0:
        raise SystemExit(f"apply-delta failed ({stats.returncode}): {stats.stderr.strip()}")
    checked = check_output(workdir / "base", workdir / "delta", workdir / "out", base_shards)

    largest = max(p.stat().st_size for p in base_shards)
    out_bytes = sum(p.stat().st_size for p in (workdir / "out").glob("*.safetensors"))
    largest_tensor = max(shape.intermediate, shape.vocab) * shape.hidden * 4
    over = stats.peak_rss - baseline.peak_rss
    mib = 2**20
    return {
        "headline": "peak_rss_ratio = (peak RSS - import baseline) / largest shard; mb_per_s includes start-up",
        "target_ratio": TARGET_RATIO,
        "peak_rss_ratio": round(over / largest, 3),
        "raw_peak_rss_ratio": round(stats.peak_rss / largest, 3),
        "target_met": over / largest <= TARGET_RATIO,
        "raw_target_met": stats.peak_rss / largest <= TARGET_RATIO,
        "mb_per_s": round(out_bytes / 1e6 / stats.seconds, 1),
        "mb_per_s_excluding_startup": round(out_bytes / 1e6 / max(stats.seconds - baseline.seconds, 1e-9), 1),
        "peak_rss_mib": round(stats.peak_rss / mib, 1),
        "peak_rss_over_baseline_mib": round(over / mib, 1),
        "baseline_import_rss_mib": round(baseline.peak_rss / mib, 1),
        "baseline_import_seconds": round(baseline.seconds, 2),
        "baseline_tiny_apply_rss_mib": round(tiny.peak_rss / mib, 1),
        "peak_rss_over_tiny_apply_mib": round((stats.peak_rss - tiny.peak_rss) / mib, 1),
        "sampled_peak_rss_mib": round(stats.sampled_peak_rss / mib, 1),
        "anon_rss_at_sampled_peak_mib": round(stats.anon_at_peak / mib, 1),
        "file_rss_at_sampled_peak_mib": round(stats.file_at_peak / mib, 1),
        "samples": stats.samples,
        "largest_shard_mib": round(largest / mib, 1),
        "largest_tensor_mib": round(largest_tensor / mib, 1),
        "shards": len(base_shards),
        "checkpoint_mib": round(sum(p.stat().st_size for p in base_shards) / mib, 1),
        "output_mib": round(out_bytes / mib, 1),
        "seconds": round(stats.seconds, 2),
        "tensors_spot_checked": checked,
        "shape": vars(shape),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "note": "inputs were just written, so they are read from the page cache, not the disk",
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, save the JSON and print the summary; the last line is `peak_rss_ratio=R mb_per_s=S`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--workdir", type=Path, help="scratch folder (default: a new temporary one, deleted after)")
    parser.add_argument("--layers", type=int, default=Shape.layers)
    parser.add_argument("--hidden", type=int, default=Shape.hidden)
    parser.add_argument("--intermediate", type=int, default=Shape.intermediate)
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args(argv)
    shape = Shape(layers=args.layers, hidden=args.hidden, intermediate=args.intermediate)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-weights-"))
    if args.workdir and workdir.exists() and any(workdir.iterdir()):
        parser.error(f"{workdir} is not empty")
    try:
        results = run(workdir, shape)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    partial = RESULTS.with_suffix(".json.tmp")
    partial.write_text(json.dumps(results, indent=2) + "\n")
    partial.replace(RESULTS)
    for key, value in results.items():
        if not isinstance(value, dict):
            print(f"{key}: {value}")
    print(f"saved {RESULTS.relative_to(REPO)}")
    print(f"peak_rss_ratio={results['peak_rss_ratio']} mb_per_s={results['mb_per_s']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
