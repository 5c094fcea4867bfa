"""`python -m backends.variants list|build`: the style-variant recipes, and building one adapter.

`build --json` prints one JSON object per line (progress, then the result); the app runs it as a child process
so training uses its own core and never holds the server's interpreter.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from backends.variants import Recipe


def main(argv: list[str] | None = None) -> int:
    """Run the command line; exit code 2 with one sentence on bad input."""
    parser = argparse.ArgumentParser(prog="python -m backends.variants", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the recipes shipped with Corral and their styles")
    build = sub.add_parser("build", help="train one recipe's LoRA adapter (reused when already built)")
    build.add_argument("recipe", help="recipe name (see `list`)")
    build.add_argument("--base", type=Path, required=True, help="the base model folder the adapter is trained on")
    build.add_argument("--out", type=Path, required=True, help="folder to write the adapter into")
    build.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1)")
    build.add_argument("--json", action="store_true", help="machine-readable progress, one JSON object per line")
    args = parser.parse_args(argv)

    from backends.variants import RecipeError, is_built, load_recipe, names

    if args.command == "list":
        for name in names():
            print(f"{name}: {load_recipe(name).style}")
        return 0
    try:
        recipe = load_recipe(args.recipe)
    except RecipeError as exc:
        print(f"corral: {exc}", file=sys.stderr)
        return 2
    if not (args.base / "config.json").is_file():
        print(f"corral: {args.base} is not a model folder (it has no config.json)", file=sys.stderr)
        return 2
    emit = _emitter(args.json)
    # Several app processes on one host (`app.py --workers N`) each start this for the same adapter: the first
    # trains it, the others wait here and then reuse it.
    with building_lock(args.out):
        if is_built(args.out, recipe, args.base):
            emit({"event": "done", "recipe": recipe.name, "out": str(args.out), "reused": True})
            return 0
        _train(args, recipe, emit)
    emit({"event": "done", "recipe": recipe.name, "out": str(args.out), "reused": False})
    return 0


@contextlib.contextmanager
def building_lock(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on `out`'s lock file (a sibling) while one process checks and builds it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with (out.parent / f"{out.name}.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _train(args: argparse.Namespace, recipe: Recipe, emit: Callable[[dict[str, object]], None]) -> None:
    import torch

    from backends.variants.train import StepReport, build_variant

    torch.set_num_threads(args.threads)

    def progress(r: StepReport) -> None:
        emit({"event": "step", "step": r.step, "steps": r.steps, "loss": round(r.loss, 4), "seconds": r.seconds})

    build_variant(args.base, recipe, args.out, progress=progress)


def _emitter(as_json: bool) -> Callable[[dict[str, object]], None]:
    """Print progress events as JSON lines (for the app's builder) or as short lines for a person."""

    def emit(event: dict[str, object]) -> None:
        if as_json:
            print(json.dumps(event), flush=True)
        elif event["event"] == "step":
            print(f"step {event['step']}/{event['steps']}  loss {event['loss']}", flush=True)
        else:
            print(f"{event['recipe']}: {'already built' if event['reused'] else 'built'} in {event['out']}")

    return emit


if __name__ == "__main__":
    raise SystemExit(main())
