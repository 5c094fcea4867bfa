"""`python -m backends.weights`: merge-lora, apply-delta, make-delta, xor-decrypt, xor-encrypt, gptq-convert."""

from __future__ import annotations

import argparse
import logging
import re
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from backends.weights.delta import apply_delta, make_delta
from backends.weights.errors import WeightsError
from backends.weights.gptq import gptq_convert
from backends.weights.lora import DTYPES, merge_lora
from backends.weights.xor import encrypt_files, xor_files

USAGE_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog="python -m backends.weights",
        description="Rebuild seed-model weights from the patches they were published as.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--out", type=Path, required=True, help="output folder (written atomically)")
    common.add_argument("--force", action="store_true", help="replace --out if it exists and is not empty")
    common.add_argument("--quiet", action="store_true", help="no progress bars")
    commands = parser.add_subparsers(dest="command", required=True)

    merge = commands.add_parser("merge-lora", parents=[common], help="merge a LoRA adapter into its base model")
    merge.add_argument("--base", type=Path, required=True, help="base model folder (transformers format)")
    merge.add_argument("--adapter", type=Path, required=True, help="peft adapter folder (may ship a tokenizer)")
    merge.add_argument("--dtype", choices=list(DTYPES), default="float32", help="dtype to load, merge and save in")

    apply = commands.add_parser("apply-delta", parents=[common], help="write base + delta")
    apply.add_argument("--base", type=Path, required=True, help="base checkpoint folder or file")
    apply.add_argument("--delta", type=Path, required=True, help="delta checkpoint folder or file")
    apply.add_argument(
        "--pad-vocab",
        action="store_true",
        help="a delta with more vocabulary rows than the base (Vicuna v0's [PAD]): append zero rows to the base",
    )

    make = commands.add_parser("make-delta", parents=[common], help="write target - base")
    make.add_argument("--base", type=Path, required=True, help="base checkpoint folder or file")
    make.add_argument("--target", type=Path, required=True, help="fine-tuned checkpoint folder or file")
    make.add_argument(
        "--compact",
        action="store_true",
        help="keep every delta in the target's dtype, even where apply-delta will then be off by a rounding step",
    )

    decrypt = commands.add_parser(
        "xor-decrypt", parents=[common], help="decrypt NAME.<sha256>.enc files (the point-alpaca container)"
    )
    decrypt.add_argument("--encrypted", type=Path, required=True, help="folder of NAME.<sha256>.enc files")
    decrypt.add_argument("--base", type=Path, required=True, help="the original base file, e.g. consolidated.00.pth")
    decrypt.add_argument("--checksums", type=Path, help="md5 list of the decrypted files (md5sum format)")
    decrypt.add_argument(
        "--md5", action="append", default=[], type=_name_md5, metavar="NAME=MD5", help="a model card's md5 of a file"
    )
    decrypt.add_argument("--base-md5", type=_md5, help="the original base file's md5 (checked before decrypting)")
    decrypt.add_argument("--only", action="append", default=[], metavar="NAME", help="decrypt just this file")

    encrypt = commands.add_parser("xor-encrypt", parents=[common], help="write plain files as NAME.<sha256>.enc")
    encrypt.add_argument("--plain", type=Path, required=True, help="folder of files to encrypt")
    encrypt.add_argument("--base", type=Path, required=True, help="the base file to XOR with")
    encrypt.add_argument("--checksums-out", type=Path, help="where to write the md5 list of the plain files")
    gptq = commands.add_parser(
        "gptq-convert", parents=[common], help="make an old GPTQ .pt (no g_idx) servable by TGI / vLLM"
    )
    gptq.add_argument("--checkpoint", type=Path, required=True, help="the .pt file, e.g. llama7b-2m-4bit-128g.pt")
    gptq.add_argument("--bits", type=int, help="quantization bits (default: from the file name, e.g. 4bit)")
    gptq.add_argument("--group-size", type=int, help="group size (default: from the file name, e.g. 128g)")
    gptq.add_argument("--side-files", type=Path, help="folder whose config.json and tokenizer go along")
    return parser


def run(args: argparse.Namespace) -> str:
    """Carry out the parsed command; returns the summary line to print."""
    progress = not args.quiet
    if args.command == "merge-lora":
        merge_lora(args.base, args.adapter, args.out, dtype=args.dtype, force=args.force)
        return f"merged {args.adapter} into {args.base}: {args.out}"
    if args.command == "apply-delta":
        report = apply_delta(
            args.base, args.delta, args.out, pad_vocab=args.pad_vocab, force=args.force, progress=progress
        )
        return f"wrote {report.tensors} tensors ({report.bytes_written / 2**20:.1f} MiB) to {args.out}"
    if args.command == "make-delta":
        report = make_delta(
            args.base, args.target, args.out, exact=not args.compact, force=args.force, progress=progress
        )
        notes = f"; {len(report.widened)} stored wider to stay exact" if report.widened else ""
        if args.compact:
            notes += f"; {report.inexact_elements} elements will differ from the target by rounding"
        return f"wrote the delta of {report.tensors} tensors to {args.out}{notes}"
    if args.command == "gptq-convert":
        gptq_report = gptq_convert(
            args.checkpoint,
            args.out,
            bits=args.bits,
            group_size=args.group_size,
            side_files=args.side_files,
            force=args.force,
        )
        settings = f"{gptq_report.bits}-bit, group size {gptq_report.group_size}"
        return f"converted {gptq_report.layers} quantized layers ({settings}) to {args.out}"
    if args.command == "xor-decrypt":
        md5s = dict(args.md5)
        xor_report = xor_files(
            args.encrypted,
            args.base,
            args.out,
            args.checksums,
            md5s=md5s,
            base_md5=args.base_md5,
            only=args.only,
            force=args.force,
            progress=progress,
        )
        checked = "the base file's md5, " if args.base_md5 else ""
        checked += "each file's sha256" + (" and the model card's md5s" if args.checksums or md5s else "")
        return f"decrypted {len(xor_report.files)} files to {args.out} (checked: {checked})"
    xor_report = encrypt_files(args.plain, args.base, args.out, args.checksums_out, force=args.force, progress=progress)
    return f"encrypted {len(xor_report.files)} files to {args.out}"


def _name_md5(value: str) -> tuple[str, str]:
    name, _, md5 = value.partition("=")
    if not name or not re.fullmatch(r"[0-9a-fA-F]{32}", md5):
        raise argparse.ArgumentTypeError(f"'{value}' is not NAME=MD5 (32 hex digits)")
    return name, md5.lower()


def _md5(value: str) -> str:
    if not re.fullmatch(r"[0-9a-fA-F]{32}", value):
        raise argparse.ArgumentTypeError(f"'{value}' is not an md5 (32 hex digits)")
    return value.lower()


def _terminate(signum: int, frame: FrameType | None) -> None:
    # Turn SIGTERM into an exception so the staging folder is cleaned up on the way out.
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse `argv`, run the command; user mistakes print one line on stderr and return 2."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("backends.weights").setLevel(logging.WARNING if args.quiet else logging.INFO)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        print(run(args))
    except WeightsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except OSError as exc:  # unreadable or unwritable paths, a full disk
        where = f": {exc.filename}" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        print("interrupted; nothing was written to --out", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())
