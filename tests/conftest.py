"""Shared fixtures: tiny demo models built once, real SQLite files, real app processes on loopback."""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_RUN_HISTORY", "False")

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from arena.config import AppConfig, LocalModel
from arena.store.engine import make_engine
from arena.store.migrate import upgrade
from arena.store.repository import Repository
from arena.wiring import local_spec
from backends.demo import DemoModels, ensure_demo_models
from backends.local import LocalBackend, LocalModelPool
from tests.helpers import Process, config_for, start_serve

torch.set_num_threads(1)  # several times faster for tiny models on 2 cores


@pytest.fixture(scope="session")
def demo_models(tmp_path_factory: pytest.TempPathFactory) -> DemoModels:
    """The demo base model and its two LoRA adapters, built once per test session."""
    return ensure_demo_models(tmp_path_factory.mktemp("models") / "demo-models")


@pytest.fixture(scope="session")
def demo_config(demo_models: DemoModels) -> AppConfig:
    """A config with the three demo models (fixed seeds) plus one whose requests never fit its context."""
    return config_for(demo_models, extra_too_long=True)


@pytest.fixture(scope="session")
def local_backends(demo_config: AppConfig) -> Iterator[dict[str, LocalBackend]]:
    """Every model of `demo_config`, loaded once through the real transformers + peft path."""
    pool = LocalModelPool()
    specs = [local_spec(m) for m in demo_config.models if isinstance(m, LocalModel)]
    yield pool.load(specs)
    pool.close()


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A fresh SQLite file, migrated to the newest schema."""
    url = f"sqlite:///{tmp_path / 'corral.db'}"
    upgrade(make_engine(url))
    return url


@pytest.fixture
def repo(db_url: str) -> Repository:
    """The repository over a fresh SQLite file."""
    return Repository(make_engine(db_url))


@pytest.fixture
def rng() -> random.Random:
    """A seeded random generator."""
    return random.Random(1234)


@pytest.fixture(scope="session")
def serve(demo_models: DemoModels, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    """`backends.serve` hosting the demo base and both adapters (16 concurrent requests)."""
    process = start_serve(demo_models, tmp_path_factory.mktemp("serve"), "--max-concurrent-requests", "16")
    yield process
    process.stop()


@pytest.fixture(scope="session")
def tight_serve(demo_models: DemoModels, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    """A second server with one request slot and small token limits, for overload and length errors."""
    process = start_serve(
        demo_models,
        tmp_path_factory.mktemp("tight"),
        "--max-concurrent-requests",
        "1",
        "--max-input-tokens",
        "64",
        "--max-total-tokens",
        "2048",
    )
    yield process
    process.stop()
