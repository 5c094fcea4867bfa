"""The backend kinds: the one table that says which `backend:` values a config may use, and how each is built.

Like huggingface_hub's provider table (`inference/_providers/__init__.py`), one entry per kind maps its name to
what owns it: the pydantic class of its config entry (whose `backend: Literal["name"]` is the tag) and its
builder. The config's `models` union and the wiring read this table only; an unknown name fails loudly with the
known ones. Kind modules import no torch at import time (the config is validated without it).
"""

from __future__ import annotations

import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from pydantic import Field

from backends import local_kind, openai, tgi, vllm
from backends.base import Backend
from backends.building import Build, BuildContext, per_entry
from backends.entries import ModelEntry

E = TypeVar("E", bound=ModelEntry)


@dataclass(frozen=True)
class Kind(Generic[E]):
    """One backend kind: its config entry class and the builder of its backends."""

    entry: type[E]
    build: Build[E]

    @property
    def name(self) -> str:
        """The `backend:` value of this kind (the Literal tag of its entry class)."""
        return str(typing.get_args(self.entry.model_fields["backend"].annotation)[0])


_KINDS: tuple[Kind[Any], ...] = (
    Kind(local_kind.LocalModel, local_kind.build),
    Kind(tgi.TgiModel, per_entry(tgi.build)),
    Kind(openai.OpenAIModel, per_entry(openai.build)),
    Kind(vllm.VllmModel, per_entry(vllm.build)),
)
KINDS: dict[str, Kind[Any]] = {k.name: k for k in _KINDS}
DEFAULT_KIND = "local"  # what an entry without `backend:` means


def kind(name: str) -> Kind[Any]:
    """The kind called `name`; KeyError naming the known kinds otherwise."""
    try:
        return KINDS[name]
    except KeyError:
        raise KeyError(f"unknown backend kind '{name}' (known: {', '.join(KINDS)})") from None


def entry_union() -> Any:
    """The pydantic type of one `models:` entry: the kinds' entry classes, told apart by `backend`."""
    classes = tuple(k.entry for k in _KINDS)
    return Annotated[typing.Union[classes], Field(discriminator="backend")]  # noqa: UP007 (built at run time)


def build_all(entries: Sequence[ModelEntry], ctx: BuildContext) -> dict[str, Backend]:
    """Every entry's backend, by entry name in config order; each kind builds its own entries together."""
    built: dict[str, Backend] = {}
    for k in _KINDS:
        mine = [e for e in entries if e.backend == k.name]
        if mine:
            built.update(k.build(mine, ctx))
    return {e.name: built[e.name] for e in entries}
