"""Turning the validated config into backend objects (called by the composition root)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from arena.config import AppConfig, ConfigError, LocalModel, OpenAIModel, TgiModel
from backends.base import Backend
from backends.health import HealthMonitor
from backends.local import LocalModelPool, LocalSpec
from backends.openai import OpenAIBackend
from backends.remote import RemoteBackend, RemoteTimeouts
from backends.tgi import TgiBackend
from backends.variants import is_built, load_recipe
from backends.variants.builder import Job, VariantBuilder


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


def local_spec(model: LocalModel) -> LocalSpec:
    """What the local backend needs from a `local` model entry."""
    return LocalSpec(model.name, model.model, model.adapter, model.template, model.dtype)


def _api_key(model: TgiModel | OpenAIModel, env: Mapping[str, str]) -> str | None:
    if model.api_key_env is None:
        return None
    key = env.get(model.api_key_env)
    if not key:
        raise ConfigError(f"model '{model.name}': environment variable {model.api_key_env} (its API key) is not set")
    return key


def build_backends(config: AppConfig, env: Mapping[str, str]) -> Wired:
    """Load local models and create remote clients; secrets come from `env` only."""
    pool = LocalModelPool()
    local = [m for m in config.models if isinstance(m, LocalModel)]
    to_build = [m for m in local if m.recipe is not None and not _variant_built(m)]
    ready = [local_spec(m) for m in local if m not in to_build]
    loaded = pool.load(ready, later=[local_spec(m) for m in to_build])
    backends: dict[str, Backend] = dict(loaded)
    variants = None
    if to_build:
        jobs = [Job(m.name, str(m.recipe), Path(m.model), Path(str(m.adapter))) for m in to_build]
        variants = VariantBuilder(jobs, on_ready=lambda job: pool.attach(loaded[job.model]))
    remote: list[RemoteBackend] = []
    for m in config.models:
        if isinstance(m, LocalModel):
            continue
        timeouts = RemoteTimeouts(m.timeouts.connect, m.timeouts.first_token, m.timeouts.between_tokens)
        key, limit = _api_key(m, env), m.max_concurrent_per_endpoint
        backend: RemoteBackend
        if isinstance(m, TgiModel):
            backend = TgiBackend(
                name=m.name,
                urls=m.endpoints,
                template=m.template,
                adapter_id=m.adapter_id,
                server_chat_template=m.server_chat_template,
                api_key=key,
                timeouts=timeouts,
                max_concurrent=limit,
            )
        else:
            backend = OpenAIBackend(
                name=m.name, urls=m.endpoints, model=m.model, api_key=key, timeouts=timeouts, max_concurrent=limit
            )
        backends[m.name] = backend
        remote.append(backend)
    intervals = [m.health_interval for m in config.models if not isinstance(m, LocalModel)]
    timeout = min((m.timeouts.connect for m in config.models if not isinstance(m, LocalModel)), default=5.0)
    monitor = HealthMonitor(remote, interval=min(intervals, default=10.0), timeout=timeout)
    return Wired(backends=backends, pool=pool, monitor=monitor, remote=remote, variants=variants)


def _variant_built(model: LocalModel) -> bool:
    """Whether a recipe entry's adapter is already built from its current recipe on its base."""
    assert model.recipe is not None and model.adapter is not None
    return is_built(Path(model.adapter), load_recipe(model.recipe), Path(model.model))
