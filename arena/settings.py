"""Deployment settings: one typed object from the environment, then the command line, built by the entry points.

Only the entry points (app.py, `python -m arena`) call `Settings.from_env`; everything else receives the object
or the one value it needs. Secrets (the IP-hash salt, the admin and Hub tokens, backend API keys) come from the
environment only, never from a flag or the config file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from arena.privacy import SALT_ENV

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = ROOT / "data"
ADMIN_TOKEN_ENV = "CORRAL_ADMIN_TOKEN"
HUB_TOKEN_ENV = "HF_TOKEN"


@dataclass(frozen=True)
class Settings:
    """Where data lives, where the server listens, and the secrets; `env` keeps the environment for API keys."""

    data_dir: Path = DEFAULT_DATA_DIR
    models_dir: Path | None = None  # None: DATA_DIR/models
    database_url: str | None = None  # None: SQLite in the data folder
    host: str = "127.0.0.1"
    port: int = 7860
    log_level: str = "INFO"
    instance: str | None = None  # names this server among several on one database (its open battles)
    nginx: str | None = None  # the nginx program of `--workers` (None: `nginx` on PATH, else /usr/sbin/nginx)
    salt: str | None = field(default=None, repr=False)
    admin_token: str | None = field(default=None, repr=False)
    hub_token: str | None = field(default=None, repr=False)
    env: Mapping[str, str] = field(default_factory=dict, repr=False)  # backend API keys are looked up here

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """The settings the environment gives (unset or empty variables keep the defaults)."""

        def get(name: str) -> str | None:
            return env.get(name) or None

        port = get("CORRAL_PORT")
        models = get("CORRAL_MODELS_DIR")
        return cls(
            data_dir=Path(get("CORRAL_DATA_DIR") or DEFAULT_DATA_DIR),
            models_dir=Path(models) if models else None,
            database_url=get("DATABASE_URL"),
            host=get("CORRAL_HOST") or cls.host,
            port=int(port) if port else cls.port,
            log_level=get("CORRAL_LOG_LEVEL") or cls.log_level,
            instance=get("CORRAL_INSTANCE"),
            nginx=get("CORRAL_NGINX"),
            salt=get(SALT_ENV),
            admin_token=get(ADMIN_TOKEN_ENV),
            hub_token=get(HUB_TOKEN_ENV),
            env=dict(env),
        )

    def updated(self, **changes: Any) -> Settings:
        """A copy with the command line's values (None leaves a setting as it was)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    @property
    def resolved_data_dir(self) -> Path:
        """The data folder as an absolute path."""
        return self.data_dir.expanduser().resolve()

    @property
    def resolved_models_dir(self) -> Path:
        """Where local models are kept (${models_dir} in configs)."""
        return (self.models_dir or self.resolved_data_dir / "models").expanduser().resolve()

    @property
    def db_url(self) -> str:
        """The SQLAlchemy URL: DATABASE_URL, or SQLite in the data folder."""
        return self.database_url or f"sqlite:///{self.resolved_data_dir / 'corral.db'}"
