"""Real services for the presenters: the demo models loaded once, a fresh SQLite file per test."""

from __future__ import annotations

import random

import pytest

from arena.battle import BattleService
from arena.chat import ChatService
from arena.config import AppConfig
from arena.language import LanguageDetector
from arena.leaks import DEFAULT_IDENTITY_WORDS, LeakDetector
from arena.limits import RateLimiter, RateLimits
from arena.matchmaking import Matchmaker
from arena.store.facade import AsyncStore
from arena.store.repository import Repository
from arena.turns import Guards
from backends.local import LocalBackend
from tests.support.store_reads import StoreReads, reads


def guards_for(config: AppConfig) -> Guards:
    """Leak detection over every name, no rate limits, the default language detector."""
    names = [n for m in config.models for n in (m.name, *m.aliases)]
    return Guards(
        leaks=LeakDetector(names, DEFAULT_IDENTITY_WORDS),
        limiter=RateLimiter(RateLimits(0, 0)),
        language=LanguageDetector(),
    )


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    """The presenters are about the page, not the SQL dialect: the root `repo` runs on a fresh SQLite file only."""
    return sqlite_url


@pytest.fixture
def stored(repo: Repository) -> StoreReads:
    """What the services wrote, read back."""
    return reads(repo)


@pytest.fixture
def battles(demo_config: AppConfig, local_backends: dict[str, LocalBackend], repo: Repository) -> BattleService:
    """A battle service over the demo models (one of them, `too-long`, always fails) and the SQLite file."""
    return BattleService(
        config=demo_config,
        backends=local_backends,
        store=AsyncStore(repo),
        matchmaker=Matchmaker(demo_config, random.Random(3), repo.pair_outcomes),
        guards=guards_for(demo_config),
    )


@pytest.fixture
def chats(demo_config: AppConfig, local_backends: dict[str, LocalBackend], repo: Repository) -> ChatService:
    """A chat service over the demo models and the SQLite file."""
    return ChatService(
        config=demo_config, backends=local_backends, store=AsyncStore(repo), guards=guards_for(demo_config)
    )
