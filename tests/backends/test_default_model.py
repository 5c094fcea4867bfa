"""The default model: found in the installed wheel, sha256-checked, converted once, loaded by the real local backend."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

from backends.base import GenerationParams, Message
from backends.default_model import GGUF_SHA256, MARKER, WEIGHTS, find_gguf, is_converted, sha256_of
from backends.local import LocalModelPool, LocalSpec
from tests.support.helpers import ROOT

QUESTION = [Message(role="user", content="What is the capital of France?")]
PARAMS = GenerationParams(max_new_tokens=24, seed=5, temperature=0.7, top_p=0.9, repetition_penalty=1.2)


def printable_text(text: str) -> bool:
    """Real words: no replacement characters and no control characters other than newlines and tabs."""
    return "\ufffd" not in text and all(c in "\n\t" or unicodedata.category(c)[0] != "C" for c in text)


def test_the_gguf_is_found_through_package_metadata_and_matches_its_pinned_hash() -> None:
    gguf = find_gguf()
    assert gguf.path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and gguf.path.is_file()
    assert gguf.recorded_sha256 in (None, GGUF_SHA256)


def test_conversion_is_complete_verified_and_reused(smollm2: Path, tmp_path: Path) -> None:
    record = json.loads((smollm2 / MARKER).read_text(encoding="utf-8"))
    assert record["gguf_sha256"] == GGUF_SHA256
    assert record["weights_sha256"] == sha256_of(smollm2 / WEIGHTS)
    config = json.loads((smollm2 / "config.json").read_text(encoding="utf-8"))
    assert "quantization_config" not in config and config["model_type"] == "llama"
    assert (smollm2 / "chat_template.jinja").is_file() or "chat_template" in (
        smollm2 / "tokenizer_config.json"
    ).read_text()
    assert not [p for p in smollm2.parent.iterdir() if p.name.startswith(".")], "a staging folder was left behind"

    # a second run reuses the verified folder at once
    proc = subprocess.run(
        [sys.executable, "-m", "backends.default_model", str(smollm2)], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0 and proc.stdout.strip() == str(smollm2) and "converting" not in proc.stderr

    # damaged weights are noticed (the app then converts again)
    copy = tmp_path / "copy"
    shutil.copytree(smollm2, copy)
    with (copy / WEIGHTS).open("r+b") as fh:
        fh.seek(4096)
        byte = fh.read(1)
        fh.seek(4096)
        fh.write(bytes([byte[0] ^ 0xFF]))
    assert is_converted(smollm2) and not is_converted(copy)


def test_the_local_backend_answers_in_real_words(smollm2: Path) -> None:
    pool = LocalModelPool()
    try:
        [backend] = pool.load([LocalSpec("smollm2", str(smollm2))]).values()

        async def answer() -> str:
            return "".join([c.text async for c in backend.stream(QUESTION, PARAMS)])

        text = asyncio.run(answer())
    finally:
        pool.close()
    assert text.strip() and printable_text(text)
    assert "Paris" in text  # the model knows this one; random weights would not
