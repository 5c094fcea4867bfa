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
DEFAULT_CONFIG = ROOT / "configs" / "default.yaml"
DEMO_CONFIG = ROOT / "configs" / "demo.yaml"  # --demo: tiny random-weight models for development and fast tests
DEFAULT_MODEL_FOLDER = "smollm2-135m-instruct"  # under the models folder; the name configs/default.yaml uses
log = logging.getLogger("corral")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(prog="app.py", description="Corral: a blind arena for your fine-tuned LLM variants.")
    p.add_argument(
        "--config", type=Path, help="YAML config file (default: SmolLM2-135M-Instruct and three style variants)"
    )
    p.add_argument("--host", default=os.environ.get("CORRAL_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("CORRAL_PORT", "7860")))
    p.add_argument(
        "--db", default=os.environ.get("DATABASE_URL"), help="SQLAlchemy URL (default: SQLite in the data folder)"
    )
    p.add_argument("--data-dir", type=Path, default=Path(os.environ.get("CORRAL_DATA_DIR", ROOT / "data")))
    p.add_argument(
        "--demo",
        action="store_true",
        help="serve the tiny random-weight demo models instead (they print random text; a fast start for development)",
    )
    p.add_argument(
        "--models-dir",
        type=Path,
        default=Path(os.environ["CORRAL_MODELS_DIR"]) if os.environ.get("CORRAL_MODELS_DIR") else None,
        help="where local models are kept, ${models_dir} in configs (default: DATA_DIR/models)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads for local models (default: 1 for the default models, else torch's default)",
    )
    return p.parse_args(argv)


def port_in_use(host: str, port: int) -> bool:
    """Whether another process already listens on host:port (checked before any model is loaded)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will: TIME_WAIT is no conflict
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def main(argv: list[str] | None = None) -> int:
    """Start the app; returns a process exit code (2: the configuration or a model cannot be used)."""
    args = parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("CORRAL_LOG_LEVEL", "INFO"), format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    if port_in_use(args.host, args.port):
        print(
            f"corral: port {args.port} on {args.host} is already in use (another Corral?); "
            f"choose another with --port, e.g. --port {args.port + 1}",
            file=sys.stderr,
        )
        return 2
    from arena.config import ConfigError, load_config
    from arena.ui.common import api_error_handlers
    from backends.default_model import DefaultModelError
    from backends.local import ModelLoadError

    started = time.perf_counter()
    data_dir: Path = args.data_dir.expanduser().resolve()
    models_dir: Path = (args.models_dir or data_dir / "models").expanduser().resolve()
    threads = args.threads
    try:
        if args.config is None and not args.demo:
            from backends.default_model import ensure_default_model

            ensure_default_model(models_dir / DEFAULT_MODEL_FOLDER, progress=lambda msg: log.info("%s", msg))
            threads = threads or 1  # one thread is faster than two for this small model on a small machine
        if args.demo:
            from backends.demo import ensure_demo_models

            ensure_demo_models(data_dir / "demo-models")
        variables = {"data_dir": str(data_dir), "models_dir": str(models_dir)}
        config = load_config(args.config or (DEMO_CONFIG if args.demo else DEFAULT_CONFIG), variables=variables)
        log.info("loading %d model(s)", len(config.models))
        app = build(config, db_url=args.db or f"sqlite:///{data_dir / 'corral.db'}", data_dir=data_dir, threads=threads)
    except (ConfigError, ModelLoadError, DefaultModelError) as exc:
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
    ui = build_ui(config, battles, chats, board, voter_factory(salt), exports, variants=wired.variants)
    seal_api(ui)
    if wired.variants is not None:  # the arena serves now; each variant joins when its adapter is built
        wired.variants.start()
    return ui


if __name__ == "__main__":
    sys.exit(main())
