"""Style variants: LoRA adapters trained on this machine from small example sets shipped as text (recipes).

A recipe (`recipes/NAME.yaml`) names a style, its training settings and a few dozen example answers. Its adapter
is built once into a folder and reused while the recipe, the base model and the training code are unchanged: the
folder's marker records a fingerprint of all three, so editing a recipe rebuilds exactly that variant.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

RECIPES = Path(__file__).with_name("recipes")
MARKER = "corral-variant.json"
TRAINER_VERSION = 1  # bump when backends/variants/train.py changes what it produces


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TrainSettings(_Strict):
    """How a variant's LoRA adapter is trained."""

    steps: int = Field(default=8, ge=1, le=1000)
    learning_rate: float = Field(default=2e-3, gt=0, le=1)
    rank: int = Field(default=8, ge=1, le=256)
    alpha: int = Field(default=16, ge=1)
    batch_size: int = Field(default=4, ge=1)
    seed: int = Field(default=0, ge=0)


class Example(_Strict):
    """One question and the answer in the variant's style."""

    user: str = Field(min_length=1)
    assistant: str = Field(min_length=1)


class Recipe(_Strict):
    """A style variant: what it is, how to train it, and what to learn from."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")
    style: str = Field(min_length=1)
    train: TrainSettings = TrainSettings()
    examples: list[Example] = Field(min_length=2)


class RecipeError(Exception):
    """A recipe is missing or invalid; the message is one sentence naming it."""


def names() -> list[str]:
    """The recipes shipped with Corral."""
    return sorted(p.stem for p in RECIPES.glob("*.yaml"))


def load_recipe(name: str) -> Recipe:
    """Read and validate `recipes/NAME.yaml`."""
    path = RECIPES / f"{name}.yaml"
    if not path.is_file():
        raise RecipeError(f"unknown variant recipe '{name}' (known: {', '.join(names()) or 'none'})")
    try:
        recipe = Recipe.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (yaml.YAMLError, ValidationError) as exc:
        raise RecipeError(f"the variant recipe {path} is invalid: {exc}") from None
    if recipe.name != name:
        raise RecipeError(f"the variant recipe {path} is named '{recipe.name}', not '{name}'")
    return recipe


def fingerprint(recipe: Recipe, base: Path) -> str:
    """What an adapter built from `recipe` on `base` depends on: the recipe, the base's weights, the trainer."""
    base_id = _base_identity(base)
    payload = json.dumps(
        {"recipe": recipe.model_dump(mode="json"), "base": base_id, "trainer": TRAINER_VERSION}, sort_keys=True
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def is_built(out: Path, recipe: Recipe, base: Path) -> bool:
    """Whether `out` holds an adapter built from this recipe on this base with this trainer."""
    try:
        record = json.loads((out / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(record.get("fingerprint") == fingerprint(recipe, base) and (out / "adapter_config.json").is_file())


def _base_identity(base: Path) -> str:
    """The base's recorded weights checksum when it has one (the default model does), else its config's hash."""
    from backends.default_model import MARKER as CONVERTED

    try:
        return str(json.loads((base / CONVERTED).read_text(encoding="utf-8"))["weights_sha256"])
    except (OSError, ValueError, KeyError):
        pass
    try:
        return hashlib.sha256((base / "config.json").read_bytes()).hexdigest()
    except OSError:
        return str(base.resolve())
