"""The `local` kind: its config entry and its builder (transformers + peft in this process).

Kept apart from backends.local, which imports torch: the config is validated without it, and torch is loaded only
when the builder runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from backends.base import Backend
from backends.building import BuildContext
from backends.entries import ModelEntry

if TYPE_CHECKING:
    from backends.local import LocalSpec


class LocalModel(ModelEntry):
    """A model run in this process with transformers (+ a peft adapter)."""

    backend: Literal["local"] = "local"
    model: str = Field(min_length=1)
    adapter: str | None = None
    dtype: Literal["float32", "bfloat16", "float16", "auto"] = "float32"
    # a style-variant recipe (backends/variants/recipes): its adapter is trained into `adapter` when missing or
    # stale, in the background; the model joins the arena once it is built
    recipe: str | None = None

    @model_validator(mode="after")
    def _recipe_needs_adapter(self) -> LocalModel:
        if self.recipe is None:
            return self
        from backends import variants

        if self.recipe not in variants.names():
            raise ValueError(f"unknown variant recipe '{self.recipe}' (known: {', '.join(variants.names())})")
        if self.adapter is None:
            raise ValueError("a model with a recipe needs `adapter`: the folder its adapter is built into")
        return self

    def with_paths_resolved(self, folder: Path, where: str) -> tuple[LocalModel, list[str]]:
        """`model` and `adapter` folders resolved against the config's folder; missing ones are problems."""
        built_later = ("adapter",) if self.recipe is not None else ()  # trained from its recipe at start
        return self._paths_resolved(folder, where, ("model", "adapter"), may_be_missing=built_later)


def local_spec(model: LocalModel) -> LocalSpec:
    """What the local backend needs from a `local` model entry."""
    from backends.local import LocalSpec

    return LocalSpec(model.name, model.model, model.adapter, model.template, model.dtype)


def build(entries: Sequence[LocalModel], ctx: BuildContext) -> dict[str, Backend]:
    """Load every local entry into the pool (bases once); recipe entries whose adapter is stale wait for its build."""
    from backends.variants.builder import Job, VariantBuilder

    to_build = [m for m in entries if m.recipe is not None and not _variant_built(m)]
    ready = [local_spec(m) for m in entries if m not in to_build]
    loaded = ctx.pool.load(ready, later=[local_spec(m) for m in to_build])
    if to_build:
        jobs = [Job(m.name, str(m.recipe), Path(m.model), Path(str(m.adapter))) for m in to_build]
        ctx.variants = VariantBuilder(jobs, on_ready=lambda job: ctx.pool.attach(loaded[job.model]))
    return dict(loaded)


def _variant_built(model: LocalModel) -> bool:
    """Whether a recipe entry's adapter is already built from its current recipe on its base."""
    from backends.variants import is_built, load_recipe

    assert model.recipe is not None and model.adapter is not None
    return is_built(Path(model.adapter), load_recipe(model.recipe), Path(model.model))
