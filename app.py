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
    from sqlalchemy.exc import OperationalError

    from arena.battle import BattleService
    from arena.chat import ChatService
    from arena.config import AppConfig, ConfigError
    from arena.export.service import ExportService
    from arena.leaderboard import LeaderboardService
    from arena.settings import Settings
    from arena.store.repository import Repository
    from arena.turns import Guards
    from arena.wiring import Wired

# Before gradio / huggingface_hub are imported: no telemetry, no run history (it could expose battle state).
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_RUN_HISTORY", "False")

ROOT = Path(__file__).resolve().parent
DEFAULT_CONFIG = ROOT / "configs" / "default.yaml"
DEMO_CONFIG = ROOT / "configs" / "demo.yaml"  # --demo: tiny random-weight models for development and fast tests
DEFAULT_MODEL_FOLDER = "smollm2-135m-instruct"  # under the models folder; the name configs/default.yaml uses
log = logging.getLogger("corral")


def parse_args(argv: list[str] | None, defaults: Settings) -> argparse.Namespace:
    """The command line; its defaults come from the environment's settings."""
    p = argparse.ArgumentParser(prog="app.py", description="Corral: a blind arena for your fine-tuned LLM variants.")
    p.add_argument(
        "--config", type=Path, help="YAML config file (default: SmolLM2-135M-Instruct and three style variants)"
    )
    p.add_argument("--host", default=defaults.host)
    p.add_argument("--port", type=int, default=defaults.port)
    p.add_argument("--db", default=defaults.database_url, help="SQLAlchemy URL (default: SQLite in the data folder)")
    p.add_argument("--data-dir", type=Path, default=defaults.data_dir)
    p.add_argument(
        "--demo",
        action="store_true",
        help="serve the tiny random-weight demo models instead (they print random text; a fast start for development)",
    )
    p.add_argument(
        "--models-dir",
        type=Path,
        default=defaults.models_dir,
        help="where local models are kept, ${models_dir} in configs (default: DATA_DIR/models)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads for local models (default: 1 for the default models, else torch's default)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="app processes to run behind nginx on this host, sharing one database (default: 1, no proxy)",
    )
    args = p.parse_args(argv)
    if args.workers < 1:
        p.error("--workers must be at least 1")
    return args


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
    from arena.settings import Settings

    env_settings = Settings.from_env(os.environ)
    args = parse_args(argv, env_settings)
    settings = env_settings.updated(
        host=args.host, port=args.port, database_url=args.db, data_dir=args.data_dir, models_dir=args.models_dir
    )
    worker = os.environ.get("CORRAL_WORKER")  # set by the supervisor of --workers: every log line names its process
    tag = f"[worker {worker}] " if worker else ""
    logging.basicConfig(level=settings.log_level, format=f"%(asctime)s {tag}%(name)s %(levelname)s %(message)s")
    if port_in_use(settings.host, settings.port):
        print(
            f"corral: port {settings.port} on {settings.host} is already in use (another Corral?); "
            f"choose another with --port, e.g. --port {settings.port + 1}",
            file=sys.stderr,
        )
        return 2
    if args.workers > 1:
        return serve_workers(args, settings)
    from arena.config import ConfigError
    from backends.default_model import DefaultModelError
    from backends.local import ModelLoadError

    started = time.perf_counter()
    try:
        config, threads = load_app_config(args.config, demo=args.demo, settings=settings, threads=args.threads)
        log.info("loading %d model(s)", len(config.models))
        app = build(config, settings, threads=threads)
    except (ConfigError, ModelLoadError, DefaultModelError) as exc:
        print(f"corral: {exc}", file=sys.stderr)
        return 2
    log.info("ready in %.1f s; serving on http://%s:%d", time.perf_counter() - started, settings.host, settings.port)
    launch(app, config, settings)
    return 0


def load_app_config(
    path: Path | None, *, demo: bool, settings: Settings, threads: int | None
) -> tuple[AppConfig, int | None]:
    """The config to serve (making the default or demo models first when they are the ones served) and the
    torch thread count."""
    from arena.config import load_config

    data_dir, models_dir = settings.resolved_data_dir, settings.resolved_models_dir
    if path is None and not demo:
        from backends.default_model import ensure_default_model

        ensure_default_model(models_dir / DEFAULT_MODEL_FOLDER, progress=lambda msg: log.info("%s", msg))
        threads = threads or 1  # one thread is faster than two for this small model on a small machine
    if demo:
        from backends.demo import ensure_demo_models

        ensure_demo_models(data_dir / "demo-models")
    variables = {"data_dir": str(data_dir), "models_dir": str(models_dir)}
    return load_config(path or (DEMO_CONFIG if demo else DEFAULT_CONFIG), variables=variables), threads


def serve_workers(args: argparse.Namespace, settings: Settings) -> int:
    """`--workers N`: prepare what the app processes share, then run them behind nginx until stopped."""
    import signal

    from arena.workers import Supervisor, WorkersError, find_nginx, nginx_command, plan_workers, prepare_in_child

    nginx = find_nginx((settings.nginx,)) if settings.nginx else find_nginx()
    if nginx is None:
        print(
            "corral: --workers runs the app processes behind nginx, which is not installed "
            f"{f'at {settings.nginx} ' if settings.nginx else ''}(Debian/Ubuntu: apt-get install nginx; "
            "CORRAL_NGINX names the program); or run the processes behind your own proxy as deploy/README.md shows",
            file=sys.stderr,
        )
        return 2
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    problem = prepare_in_child(prepare_shared, args, settings, stopping=stopping.is_set)
    if stopping.is_set():
        return 0
    workers = plan_workers(args.workers, instance_name(settings))
    try:
        if problem:
            raise WorkersError(problem)
        conf = proxy_config(nginx, settings, [w.port for w in workers])
    except WorkersError as exc:
        print(f"corral: {exc}", file=sys.stderr)
        return 2
    supervisor = Supervisor(
        command=lambda w: worker_command(args, settings, w.port),
        env={**os.environ, "DATABASE_URL": settings.db_url},  # not on the command line: `ps` would show a password
        workers=workers,
        nginx=nginx_command(nginx, conf.parent, conf),
        public=(settings.host, settings.port),
    )
    try:
        if supervisor.start(stopping.is_set):
            log.info("serving on http://%s:%d: %d workers behind nginx", settings.host, settings.port, len(workers))
            supervisor.run(stopping.is_set)
    except WorkersError as exc:
        print(f"corral: {exc}", file=sys.stderr)
        return 1
    finally:
        supervisor.stop()
    return 0


def proxy_config(nginx: str, settings: Settings, ports: list[int]) -> Path:
    """Write nginx's config for these worker ports under DATA_DIR/proxy and check it (WorkersError if nginx or
    the folder refuses)."""
    from arena.workers import WorkersError, check_nginx, listen_address, write_nginx_files

    prefix = settings.resolved_data_dir / "proxy"
    try:
        conf = write_nginx_files(prefix, listen=listen_address(settings.host, settings.port), ports=ports)
    except OSError as exc:
        raise WorkersError(f"the proxy's files cannot be written under {prefix}: {exc.strerror or exc}") from None
    check_nginx(nginx, prefix, conf)
    return conf


def prepare_shared(args: argparse.Namespace, settings: Settings) -> str | None:
    """The models, the database schema and the IP-hash salt every worker uses; the problem as a sentence, or None."""
    from arena.config import ConfigError
    from backends.default_model import DefaultModelError
    from backends.local import ModelLoadError

    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        load_app_config(args.config, demo=args.demo, settings=settings, threads=args.threads)
        prepare_shared_store(settings)
    except (ConfigError, ModelLoadError, DefaultModelError) as exc:
        return str(exc)
    return None


def worker_command(args: argparse.Namespace, settings: Settings, port: int) -> list[str]:
    """The app.py command line of one worker: the same arena and folders, on a loopback port."""
    command = [sys.executable, str(ROOT / "app.py"), "--host", "127.0.0.1", "--port", str(port)]
    command += ["--data-dir", str(settings.resolved_data_dir)]  # the database comes as DATABASE_URL
    command += ["--models-dir", str(settings.resolved_models_dir)]
    if args.config is not None:
        command += ["--config", str(args.config.resolve())]
    if args.demo:
        command.append("--demo")
    if args.threads:
        command += ["--threads", str(args.threads)]
    return command


def prepare_shared_store(settings: Settings) -> None:
    """Bring the database to the current schema and make the IP-hash salt, once for every worker."""
    from sqlalchemy.exc import OperationalError

    from arena.config import ConfigError
    from arena.privacy import SaltError, deployment_salt
    from arena.store.engine import make_engine
    from arena.store.migrate import upgrade

    engine = make_engine(settings.db_url)
    try:
        upgrade(engine)
        deployment_salt(settings.salt, settings.resolved_data_dir)
    except OperationalError as exc:
        raise unwritable_database(settings, exc) from None
    except (SaltError, ValueError) as exc:
        raise ConfigError(str(exc)) from None
    finally:
        engine.dispose()


def remember_missing_modules(names: tuple[str, ...] = ("matplotlib",)) -> None:
    """Make `import name` fail at once for modules that are not installed.

    Gradio tries `import matplotlib` twice around every event it runs (to switch the plotting backend) and in each
    new session's plot component; without matplotlib, every try searches sys.path again (about 25 µs here, against
    under 1 µs once recorded). A None entry in sys.modules is Python's record of a missing module.
    """
    import importlib.util

    for name in names:
        if name not in sys.modules and importlib.util.find_spec(name) is None:
            sys.modules[name] = None  # type: ignore[assignment]


def launch(app: gr.Blocks, config: AppConfig, settings: Settings) -> None:
    """Serve the built app until the process is stopped."""
    from arena.ui.common import PAGE_CSS, api_error_handlers

    remember_missing_modules()
    app.launch(
        css=PAGE_CSS,
        server_name=settings.host,
        server_port=settings.port,
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


def build(config: AppConfig, settings: Settings, *, threads: int | None = None) -> gr.Blocks:
    """Wire storage, backends, services and UI from a validated config and the deployment's settings."""
    import torch

    from arena.config import ConfigError
    from arena.privacy import SaltError, deployment_salt
    from arena.ui import build_ui
    from arena.ui.common import seal_api, voter_factory

    if threads:
        torch.set_num_threads(threads)
    from arena.maintenance import instance_prefix

    # battle ids start with this: a restarted instance closes the battles its predecessor left open, and only those
    prefix = instance_prefix(instance_name(settings))
    repo = open_store(config, settings, prefix)
    wired = start_backends(config, settings)
    try:
        salt = deployment_salt(settings.salt, settings.resolved_data_dir)
        exports = export_service(repo, salt, settings.admin_token)
    except (SaltError, ValueError) as exc:
        wired.close()
        raise ConfigError(str(exc)) from None
    battles, chats, board = services(config, repo, wired, prefix)
    ui = build_ui(config, battles, chats, board, voter_factory(salt), exports, variants=wired.variants)
    seal_api(ui)
    if wired.variants is not None:  # the arena serves now; each variant joins when its adapter is built
        wired.variants.start()
    return ui


def open_store(config: AppConfig, settings: Settings, prefix: str) -> Repository:
    """The repository on an up-to-date database, with the battles a killed predecessor left open closed."""
    from sqlalchemy.exc import OperationalError

    from arena.maintenance import close_interrupted
    from arena.store.engine import make_engine
    from arena.store.migrate import upgrade
    from arena.store.repository import Repository

    engine = make_engine(settings.db_url)
    repo = Repository(engine)
    try:
        upgrade(engine)
        idle = config.arena.retention.close_idle_battles_after_minutes
        if closed := close_interrupted(repo, prefix=prefix, idle_minutes=idle):
            log.info("closed %d interrupted battle(s) as incomplete", closed)
    except OperationalError as exc:  # a read-only volume, a missing folder, a database server that is down
        raise unwritable_database(settings, exc) from None
    return repo


def unwritable_database(settings: Settings, exc: OperationalError) -> ConfigError:
    """The sentence for a database that cannot be opened for writing (its URL shown without the password)."""
    from sqlalchemy.engine import make_url

    from arena.config import ConfigError
    from arena.store.retry import reason

    shown = make_url(settings.db_url).render_as_string(hide_password=True)
    return ConfigError(f"the database {shown} cannot be opened for writing: {reason(exc)}")


def instance_name(settings: Settings) -> str:
    """This server's name among several on one database: a restarted instance closes its predecessor's battles."""
    return settings.instance or f"{socket.gethostname()}:{settings.resolved_data_dir}"


def start_backends(config: AppConfig, settings: Settings) -> Wired:
    """Every backend, with the replicas checked once and the health monitor running."""
    from arena.config import ConfigError
    from arena.wiring import build_backends

    wired = build_backends(config, settings.env)
    wired.monitor.check_now()  # know which replicas answer before the first battle is drawn
    for backend in wired.remote:
        if backend.problem:
            wired.close()
            raise ConfigError(backend.problem)
    wired.monitor.start()
    return wired


def export_service(repo: Repository, salt: bytes, admin_token: str | None) -> ExportService | None:
    """The Export tab's service: only with an admin token."""
    if not admin_token:
        return None
    from arena.export.formats import Judges
    from arena.export.service import ExportService

    return ExportService(repo.engine, Judges(salt), admin_token)


def guards_for(config: AppConfig) -> Guards:
    """The leak detector, rate limiter and language detector for this arena."""
    from arena.language import LanguageDetector
    from arena.leaks import DEFAULT_IDENTITY_WORDS, LeakDetector
    from arena.limits import RateLimiter, RateLimits
    from arena.turns import Guards

    arena = config.arena
    names = [name for m in config.models for name in (m.name, *m.aliases)]
    guards = Guards(
        leaks=LeakDetector(names, arena.identity_words if arena.identity_words is not None else DEFAULT_IDENTITY_WORDS),
        limiter=RateLimiter(RateLimits(arena.limits.messages_per_minute, arena.limits.votes_per_hour)),
        language=LanguageDetector(arena.languages),
    )
    # lingua loads its models on first use (2-3 s): do it now, off the event loop, not on the first question
    threading.Thread(target=guards.language.warm_up, name="language-warm-up", daemon=True).start()
    return guards


def services(
    config: AppConfig, repo: Repository, wired: Wired, prefix: str
) -> tuple[BattleService, ChatService, LeaderboardService]:
    """The battle, chat and leaderboard services over one store."""
    from arena.battle import BattleService
    from arena.chat import ChatService
    from arena.leaderboard import LeaderboardService
    from arena.maintenance import battle_ids
    from arena.matchmaking import Matchmaker
    from arena.rating_methods import rating_method
    from arena.store.facade import AsyncStore

    store, guards, method = AsyncStore(repo), guards_for(config), rating_method(config.arena.rating_method)
    from arena.style_board import style_ratings

    matchmaker = Matchmaker(
        config,
        random.Random(),
        repo.pair_outcomes,
        method=method,
        style_ratings=lambda: style_ratings(repo.style_votes()),
    )
    new_id = battle_ids(prefix)
    from arena.background_judging import BackgroundJudging
    from arena.judges import Judge

    judging = BackgroundJudging([Judge(j, wired.backends[j.model]) for j in config.judges if j.background], store)
    battles = BattleService(
        config=config,
        backends=wired.backends,
        store=store,
        matchmaker=matchmaker,
        guards=guards,
        new_id=new_id,
        judging=judging,
    )
    chats = ChatService(config=config, backends=wired.backends, store=store, guards=guards)
    board = LeaderboardService(
        repo,
        models=[m.name for m in config.models],
        method=method,
        intervals=config.arena.leaderboard_intervals,
        families={j.name: j.family for j in config.judges},
    )
    return battles, chats, board


if __name__ == "__main__":
    sys.exit(main())
