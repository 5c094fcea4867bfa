"""Browser fixtures: Debian's Chromium driven by Playwright (never `playwright install`), one real app process
per package over copies of the demo models, network capture on every page, screenshots under
test-artifacts/browser/."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from backends.demo import DemoModels, demo_paths
from tests.browser.capture import NetworkCapture
from tests.support.helpers import ROOT, RunningApp, config_data, start_app, start_workers

CHROMIUM = os.environ.get("CORRAL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
WAIT_MS = 90_000  # generous: conditions are awaited, never timed

# Distinctive identities, so that searching the page for them means something.
SECRET_DIR = "okapi-vault-31"  # the folder holding the models: must never reach the browser
MODELS = {
    "zebra-variant-7": {
        "adapter": "lora-a",
        "description": "striped-marker-1138 fine-tune",
        "license": "licence-marker-4242",
    },
    "quokka-variant-9": {
        "adapter": "lora-b",
        "description": "pouch-marker-2271 fine-tune",
        "license": "licence-marker-5353",
    },
}
MAX_NEW_TOKENS = 200  # long enough to watch both panes grow
LONG_MAX_NEW_TOKENS = 200  # on the real default model: several seconds of streaming, time to press Stop


def _chromium_or_skip() -> str:
    missing = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright Python package (requirements-dev.txt)")
    if not Path(CHROMIUM).is_file():
        missing.append(f"Chromium at {CHROMIUM} (Debian package `chromium`; `make system-deps` installs it)")
    if missing:
        message = "browser tests need " + " and ".join(missing)
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture(scope="session")
def chromium() -> str:
    """The Chromium executable; fails with a clear message on CI when it is missing, skips elsewhere."""
    return _chromium_or_skip()


@pytest.fixture(scope="package")  # sync Playwright runs an event loop: gone before other packages
def playwright_driver(chromium: str) -> Iterator[Any]:
    """One Playwright driver for the browser tests (stopped before the next package runs)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


@dataclass
class Browser:
    """A page in a fresh Chromium profile, with everything it receives captured."""

    page: Any  # playwright.sync_api.Page
    capture: NetworkCapture
    artifacts: Path
    dialogs: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    shots: list[Path] = field(default_factory=list)

    def shot(self, step: str) -> Path:
        """Save a full-page screenshot of this step as a test artifact."""
        path = self.artifacts / f"{len(self.shots) + 1:02d}-{step}.png"
        self.page.screenshot(path=str(path), full_page=True)
        self.shots.append(path)
        return path


@pytest.fixture
def browser(chromium: str, playwright_driver: Any, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Browser]:
    """A fresh Chromium (its own user-data-dir under tmp_path) and one captured page."""
    context = playwright_driver.chromium.launch_persistent_context(
        str(tmp_path / "chromium-profile"),
        executable_path=chromium,
        headless=True,
        args=CHROMIUM_ARGS,
        viewport={"width": 1400, "height": 1000},
    )
    context.set_default_timeout(WAIT_MS)
    page = context.pages[0] if context.pages else context.new_page()
    artifacts = ARTIFACTS / re.sub(r"[^\w.-]+", "_", request.node.name)
    shutil.rmtree(artifacts, ignore_errors=True)
    artifacts.mkdir(parents=True, exist_ok=True)
    session = Browser(page, NetworkCapture.attach(page), artifacts)

    def on_dialog(dialog: Any) -> None:
        session.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("console", lambda m: session.console_errors.append(m.text) if m.type == "error" else None)
    page.on("request", lambda r: session.requests.append(r.url))
    try:
        yield session
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            session.shot("failure")
    finally:
        context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the test item, so the browser fixture can screenshot a failure."""
    report: pytest.TestReport = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture(scope="package")
def secret_models(demo_models: DemoModels, tmp_path_factory: pytest.TempPathFactory) -> DemoModels:
    """A copy of the demo models inside a folder with a distinctive name (the path a voter must never see)."""
    root = tmp_path_factory.mktemp("secret") / SECRET_DIR
    shutil.copytree(demo_models.base.parent, root)
    return demo_paths(root)


def arena_config(models: DemoModels) -> dict[str, Any]:
    """Two LoRA variants with distinctive names, descriptions and licences (no identity words in them)."""
    data = config_data(models, max_new_tokens=MAX_NEW_TOKENS)
    gen = data["models"][0]["generation"]
    data["models"] = [
        {
            "name": name,
            "model": str(models.base),
            "adapter": str(models.adapters[spec["adapter"]]),
            "description": spec["description"],
            "license": spec["license"],
            "generation": gen,
        }
        for name, spec in MODELS.items()
    ]
    data["arena"] = {"max_input_chars": 400, "max_turns": 4, "title": "Browser arena"}
    return data


@pytest.fixture(scope="package", params=["one-process", "two-workers-behind-nginx"])
def arena_app(
    secret_models: DemoModels, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[RunningApp]:
    """app.py serving the two distinctive demo variants, shared by the browser tests of this package: once as one
    process, once as `--workers 2` behind nginx (every request of the page goes through the proxy)."""
    workdir = tmp_path_factory.mktemp("browser-app")
    if request.param == "one-process":
        running: RunningApp = start_app(arena_config(secret_models), workdir)
    else:
        running = start_workers(arena_config(secret_models), workdir, 2)
    yield running
    running.stop()


@pytest.fixture(scope="package")
def long_arena_app(smollm2: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    """The arena's two contestants on the real default model, whose answers take seconds: long enough to watch
    both panes grow and to press Stop while they still stream (the tiny models finish a whole answer in a fraction
    of a second now that both panes share one forward pass)."""
    data = arena_config(demo_paths(tmp_path_factory.mktemp("unused")))
    for model in data["models"]:
        model.pop("adapter")
        model.update(model=str(smollm2), template="tokenizer")
        model["generation"] = {**model["generation"], "max_new_tokens": LONG_MAX_NEW_TOKENS, "repetition_penalty": 1.2}
    running = start_app(data, tmp_path_factory.mktemp("browser-long-app"))
    yield running
    running.stop()


@pytest.fixture
def open_app(browser: Browser) -> Callable[[str], Browser]:
    """Navigate the captured page to an app and wait until Gradio has rendered it."""

    def go(url: str) -> Browser:
        browser.page.goto(url)
        browser.page.wait_for_selector("#battle-input textarea")
        return browser

    return go
