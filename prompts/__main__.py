"""`python -m prompts`: list, show, render and export prompt formats (the only code here reading argv and files)."""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import prompts
from prompts import Message, PromptError

# Same exit status argparse uses for bad arguments: the request was wrong, not the program.
EXIT_USAGE = 2


class InputError(Exception):
    """A messages file that is missing, not JSON, or not a list of {role, content}; the message is a sentence."""


def parse_messages(data: object, source: str) -> list[Message]:
    """The conversation in `data` (decoded JSON), checked to be a list of {role: str, content: str}."""
    if not isinstance(data, list):
        raise InputError(f"{source} must hold a JSON list of {{role, content}} objects.")
    messages: list[Message] = []
    for i, item in enumerate(data):
        if not (isinstance(item, dict) and isinstance(item.get("role"), str) and isinstance(item.get("content"), str)):
            raise InputError(f"Message {i} in {source} is not an object with string 'role' and 'content'.")
        messages.append(Message(role=item["role"], content=item["content"]))
    return messages


def _read_messages(path: Path) -> list[Message]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"Cannot read {path}: {exc.strerror or exc}.") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}).") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}).") from exc
    return parse_messages(data, str(path))


def _cmd_list(_: argparse.Namespace) -> None:
    for name in prompts.names():
        description = prompts.TOKENIZER_DESCRIPTION if name == prompts.TOKENIZER else prompts.get(name).description
        print(f"{name}\t{description}")


def _cmd_show(args: argparse.Namespace) -> None:
    if args.name == prompts.TOKENIZER:
        raise PromptError("The 'tokenizer' format has no template in Corral: each model's tokenizer files carry it.")
    fmt = prompts.get(args.name)
    print(f"name: {fmt.name}")
    print(f"description: {fmt.description}")
    # json.dumps shows the exact characters of each string, newlines and spaces included.
    print(f"stop: {json.dumps(list(fmt.stop), ensure_ascii=False)}")
    default = "none" if fmt.default_system is None else json.dumps(fmt.default_system, ensure_ascii=False)
    print(f"default system: {default}")
    print("source:")
    sys.stdout.write(fmt.source)


def _cmd_render(args: argparse.Namespace) -> None:
    messages = _read_messages(args.messages)
    # Written as is, without a final newline: trailing whitespace is part of the prompt.
    sys.stdout.write(prompts.render(args.name, messages, add_generation_prompt=not args.no_generation_prompt))


def _cmd_export(args: argparse.Namespace) -> None:
    source = prompts.export_source(args.name, embed_default_system=args.embed_default_system)
    try:
        args.out.write_text(source, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"Cannot write {args.out}: {exc.strerror or exc}.") from exc
    print(f"Wrote the {args.name} template to {args.out}.", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `python -m prompts`."""
    parser = argparse.ArgumentParser(prog="python -m prompts", description="Corral's prompt formats.")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("list", help="every format name with its description").set_defaults(run=_cmd_list)

    show = sub.add_parser("show", help="a format's Jinja source, stop strings and default system message")
    show.add_argument("name")
    show.set_defaults(run=_cmd_show)

    render = sub.add_parser("render", help="print the prompt for a conversation")
    render.add_argument("name")
    render.add_argument("--messages", type=Path, required=True, help="JSON file: a list of {role, content}")
    render.add_argument("--no-generation-prompt", action="store_true", help="leave out the assistant cue at the end")
    render.set_defaults(run=_cmd_render)

    export = sub.add_parser("export", help="write a format's chat template for TGI / vLLM")
    export.add_argument("name")
    export.add_argument("--out", type=Path, required=True, help="the .jinja file to write")
    export.add_argument(
        "--embed-default-system",
        action="store_true",
        help="make the template itself add the default system message (servers apply nothing else)",
    )
    export.set_defaults(run=_cmd_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one sub-command; errors become one line on stderr and exit status 2."""
    args = build_parser().parse_args(argv)
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            # Prompts and messages carry French, Chinese and Korean text whatever the locale says.
            stream.reconfigure(encoding="utf-8")
    try:
        args.run(args)
    except (PromptError, InputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
