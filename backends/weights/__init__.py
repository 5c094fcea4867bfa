"""Reconstructing seed-model weights from patches: LoRA merges, delta weights and XOR-encrypted files.

Run `python -m backends.weights --help` for the command line; the functions below are the same operations for
Python callers. Every one writes into a hidden folder beside its output and renames it into place at the end.
"""

from __future__ import annotations

from backends.weights.delta import DeltaReport, apply_delta, make_delta
from backends.weights.errors import WeightsError
from backends.weights.lora import merge_lora
from backends.weights.xor import XorReport, encrypt_files, read_checksums, xor_files

__all__ = [
    "DeltaReport",
    "WeightsError",
    "XorReport",
    "apply_delta",
    "encrypt_files",
    "make_delta",
    "merge_lora",
    "read_checksums",
    "xor_files",
]
