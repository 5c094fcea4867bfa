"""Turning the validated config into backend objects (called by the composition root)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from arena.config import AppConfig, ConfigError
from backends.base import Backend
from backends.building import BuildContext
from backends.entries import EntryError, RemoteEntry
from backends.health import HealthMonitor
from backends.kinds import build_all
from backends.local import LocalModelPool
from backends.local_kind import local_spec
from backends.remote import RemoteBackend
from backends.variants.builder import VariantBuilder

__all__ = ["Wired", "build_backends", "local_spec"]


@dataclass
class Wired:
    """Every backend by model name, plus what owns threads and must be closed."""

    backends: dict[str, Backend]
    pool: LocalModelPool
    monitor: HealthMonitor
    remote: list[RemoteBackend] = field(default_factory=list)
    variants: VariantBuilder | None = None  # style variants still to build (their models join when built)

    def close(self) -> None:
        """Stop the variant builds, the health monitor and the local decoders."""
        if self.variants is not None:
            self.variants.stop()
        self.monitor.stop()
        self.pool.close()


def build_backends(config: AppConfig, env: Mapping[str, str]) -> Wired:
    """Build every model's backend through its kind (backends/kinds.py); secrets come from `env` only."""
    ctx = BuildContext(env=env, pool=LocalModelPool())
    try:
        backends = build_all(config.models, ctx)
    except EntryError as exc:
        ctx.pool.close()
        raise ConfigError(str(exc)) from None
    remote = [b for b in backends.values() if isinstance(b, RemoteBackend)]
    served = [m for m in config.models if isinstance(m, RemoteEntry)]
    interval = min((m.health_interval for m in served), default=10.0)
    timeout = min((m.timeouts.connect for m in served), default=5.0)
    monitor = HealthMonitor(remote, interval=interval, timeout=timeout)
    return Wired(backends=backends, pool=ctx.pool, monitor=monitor, remote=remote, variants=ctx.variants)
