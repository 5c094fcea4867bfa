"""Corral's composition root: read arguments and environment, load the config, build everything, serve."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import gradio as gr

    from arena.config import AppConfig

# Before gradio / huggingface_hub are imported: no telemetry, no run history (it could expose battle state).
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_RUN_HISTORY", "False")

ROOT = Path(__file__).resolve().parent
DEMO_CONFIG = ROOT / "configs" / "demo.yaml"
log = logging.getLogger("corral")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(prog="app.py", description="Corral: a blind arena for your fine-tuned LLM variants.")
    p.add_argument("--config", type=Path, help="YAML config file (default: offline demo models)")
    p.add_argument("--host", default=os.environ.get("CORRAL_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("CORRAL_PORT", "7860")))
    p.add_argument(
        "--db", default=os.environ.get("DATABASE_URL"), help="SQLAlchemy URL (default: SQLite in the data folder)"
    )
    p.add_argument("--data-dir", type=Path, default=Path(os.environ.get("CORRAL_DATA_DIR", ROOT / "data")))
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads for local models")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Start the app; returns a process exit code (2: the configuration or a model cannot be used)."""
    args = parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("CORRAL_LOG_LEVEL", "INFO"), format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    from arena.config import ConfigError, load_config
    from arena.ui.common import api_error_handlers
    from backends.local import ModelLoadError

    started = time.perf_counter()
    data_dir: Path = args.data_dir.expanduser().resolve()
    try:
        if args.config is None:
            from backends.demo import ensure_demo_models

            t = time.perf_counter()
            ensure_demo_models(data_dir / "demo-models")
            log.info("demo models ready in %.1f s under %s", time.perf_counter() - t, data_dir / "demo-models")
            config = load_config(DEMO_CONFIG, variables={"data_dir": str(data_dir)})
        else:
            models_dir = os.environ.get("CORRAL_MODELS_DIR", str(data_dir / "models"))
            config = load_config(args.config, variables={"data_dir": str(data_dir), "models_dir": models_dir})
        app = build(
            config, db_url=args.db or f"sqlite:///{data_dir / 'corral.db'}", data_dir=data_dir, threads=args.threads
        )
    except (ConfigError, ModelLoadError) as exc:
        print(f"corral: {exc}", file=sys.stderr)
        return 2
    log.info("ready in %.1f s; serving on http://%s:%d", time.perf_counter() - started, args.host, args.port)
    app.launch(
        server_name=args.host,
        server_port=args.port,
        show_error=False,
        run_history=False,
        footer_links=["api", "settings"],
        quiet=True,
        # Gradio runs at most max_threads events at once across all events (default 40, whatever each event's
        # concurrency_limit says): leave room for the three streaming tabs at their limit plus short events.
        max_threads=max(40, 4 * config.arena.concurrency_limit),
        app_kwargs={
            "exception_handlers": api_error_handlers(),  # an unknown endpoint name: 404, not a 500
            "lifespan": worker_threads(max(32, 2 * config.arena.concurrency_limit)),
        },
    )
    return 0


def worker_threads(count: int) -> Callable[[object], contextlib.AbstractAsyncContextManager[None]]:
    """A lifespan giving the server's event loop `count` worker threads for blocking calls (asyncio.to_thread).

    asyncio's default pool has min(32, cores + 4) threads: with many battles at once, language detection and
    every battle, round and vote write queue behind each other there, and a vote waits for other people's writes.
    """

    @contextlib.asynccontextmanager
    async def lifespan(_app: object) -> AsyncIterator[None]:
        pool = ThreadPoolExecutor(max_workers=count, thread_name_prefix="corral-io")
        asyncio.get_running_loop().set_default_executor(pool)
        try:
            yield
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    return lifespan


def build(config: AppConfig, *, db_url: str, data_dir: Path, threads: int | None) -> gr.Blocks:
    """Wire storage, backends, services and UI from a validated config."""
    import torch
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError

    from arena.battle import BattleService, Guards
    from arena.chat import ChatService
    from arena.config import ConfigError
    from arena.export.formats import Judges
    from arena.export.service import ExportService
    from arena.language import LanguageDetector
    from arena.leaderboard import LeaderboardService
    from arena.leaks import DEFAULT_IDENTITY_WORDS, LeakDetector
    from arena.limits import RateLimiter, RateLimits
    from arena.maintenance import battle_ids, close_interrupted, instance_prefix
    from arena.matchmaking import Matchmaker
    from arena.privacy import SALT_ENV, SaltError, deployment_salt
    from arena.retry import reason
    from arena.store.engine import make_engine
    from arena.store.migrate import upgrade
    from arena.store.repository import Repository
    from arena.ui import build_ui
    from arena.ui.common import seal_api, voter_factory
    from arena.wiring import build_backends

    if threads:
        torch.set_num_threads(threads)
    engine = make_engine(db_url)
    repo = Repository(engine)
    # a restarted instance closes the battles its killed predecessor left open (their state died with it)
    instance = os.environ.get("CORRAL_INSTANCE") or f"{socket.gethostname()}:{data_dir}"
    prefix = instance_prefix(instance)
    try:
        upgrade(engine)
        idle = config.arena.retention.close_idle_battles_after_minutes
        if closed := close_interrupted(repo, prefix=prefix, idle_minutes=idle):
            log.info("closed %d interrupted battle(s) as incomplete", closed)
    except OperationalError as exc:  # a read-only volume, a missing folder, a database server that is down
        shown = make_url(db_url).render_as_string(hide_password=True)
        raise ConfigError(f"the database {shown} cannot be opened for writing: {reason(exc)}") from None
    wired = build_backends(config, os.environ)
    wired.monitor.check_now()  # know which replicas answer before the first battle is drawn
    for backend in wired.remote:
        if backend.problem:
            wired.close()
            raise ConfigError(backend.problem)
    wired.monitor.start()
    backends = wired.backends
    try:
        salt = deployment_salt(os.environ.get(SALT_ENV), data_dir)
    except SaltError as exc:
        wired.close()
        raise ConfigError(str(exc)) from None
    exports = None
    if admin_token := os.environ.get("CORRAL_ADMIN_TOKEN"):  # the Export tab exists only with an admin token
        try:
            exports = ExportService(engine, Judges(salt), admin_token)
        except ValueError as exc:
            wired.close()
            raise ConfigError(str(exc)) from None
    arena = config.arena
    names = [name for m in config.models for name in (m.name, *m.aliases)]
    guards = Guards(
        leaks=LeakDetector(names, arena.identity_words if arena.identity_words is not None else DEFAULT_IDENTITY_WORDS),
        limiter=RateLimiter(RateLimits(arena.limits.messages_per_minute, arena.limits.votes_per_hour)),
        language=LanguageDetector(arena.languages),
    )
    # lingua loads its models on first use (2-3 s): do it now, off the event loop, not on the first question
    threading.Thread(target=guards.language.warm_up, name="language-warm-up", daemon=True).start()
    matchmaker = Matchmaker(config, random.Random(), repo.pair_outcomes)
    battles = BattleService(
        config=config, backends=backends, repo=repo, matchmaker=matchmaker, guards=guards, new_id=battle_ids(prefix)
    )
    chats = ChatService(config=config, backends=backends, repo=repo, guards=guards)
    board = LeaderboardService(repo, models=[m.name for m in config.models])
    ui = build_ui(config, battles, chats, board, voter_factory(salt), exports)
    seal_api(ui)
    return ui


if __name__ == "__main__":
    sys.exit(main())
