"""A battle in a real browser on the real default model: both answers are real text (no replacement characters)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.backends.test_default_model import printable_text
from tests.browser.conftest import Browser
from tests.browser.ui import last_bot_text, send, wait_votable
from tests.support.default_app import start_default_app, variants_to_build, wait_for_variants
from tests.support.helpers import RunningApp


@pytest.fixture(scope="module")
def default_app(smollm2: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    """`python app.py` as a new user starts it, every style variant joined."""
    models_dir = smollm2.parent
    pending = variants_to_build(models_dir)
    app = start_default_app(tmp_path_factory.mktemp("default-app"), models_dir)
    try:
        wait_for_variants(app, len(pending))
        yield app
    finally:
        app.stop()


def test_a_battle_on_the_real_model_shows_real_text(
    default_app: RunningApp, open_app: Callable[[str], Browser]
) -> None:
    browser = open_app(default_app.url)
    page = browser.page
    assert "SmolLM2-135M-Instruct" in page.inner_text("#notice")
    send(page, "battle", "What is a good way to start learning to cook?")
    wait_votable(page, "battle")
    a, b = last_bot_text(page, "battle-pane-a"), last_bot_text(page, "battle-pane-b")
    browser.shot("real-battle")
    assert a.strip() and b.strip(), (a, b)
    assert printable_text(a) and printable_text(b), (a, b)
    page.click("#battle-vote-a")
    page.wait_for_function("() => document.querySelector('#battle-reveal').innerText.includes('smollm2')")
    browser.shot("real-battle-revealed")
