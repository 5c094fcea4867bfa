"""What a kind's builder receives besides its entries: secrets, the local model pool, what must be stopped later."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from backends.base import Backend
from backends.clients import RemoteTimeouts
from backends.entries import RemoteEntry
from backends.remote import ActivityBoard, RemoteBackend, RemoteOptions

if TYPE_CHECKING:  # both import torch: only the local kind's builder loads them, when it runs
    from backends.local import LocalModelPool
    from backends.variants.builder import VariantBuilder

E = TypeVar("E")
R = TypeVar("R", bound=RemoteEntry)
Build = Callable[[Sequence[E], "BuildContext"], dict[str, Backend]]


@dataclass
class BuildContext:
    """The environment (API keys only), the pool that loads local models, and what builders leave running."""

    env: Mapping[str, str]
    pool: LocalModelPool
    variants: VariantBuilder | None = None  # style variants still to build (set by the local kind)
    activity: ActivityBoard = field(default_factory=ActivityBoard)  # one per app: remote models share servers


def remote_options(entry: RemoteEntry, ctx: BuildContext) -> RemoteOptions:
    """The settings every remote backend takes, from the keys every remote entry has; EntryError without its key."""
    t = entry.timeouts
    return RemoteOptions(
        api_key=entry.api_key(ctx.env),
        timeouts=RemoteTimeouts(t.connect, t.first_token, t.between_tokens),
        max_concurrent=entry.max_concurrent_per_endpoint,
        activity=ctx.activity,
    )


def per_entry(build_one: Callable[[R, RemoteOptions], RemoteBackend]) -> Build[R]:
    """A kind's builder from a function that builds one remote entry's backend from its common settings."""

    def build(entries: Sequence[R], ctx: BuildContext) -> dict[str, Backend]:
        return {e.name: build_one(e, remote_options(e, ctx)) for e in entries}

    return build
