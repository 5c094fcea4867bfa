"""Bad input from strangers, generated with hypothesis, against a real app process: messages, vote sequences, raw
HTTP calls to every Gradio route with wrong types, missing fields, huge payloads and forged sessions.

Every case must end in a sentence or a 4xx; afterwards the database is sound, the app log holds no traceback and
the app still serves. Examples are derandomized (fixed) so CI sees the same cases every run.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arena.text import clean_text
from backends.demo import DemoModels
from tests.support.db_checks import invariant_violations, rows
from tests.support.helpers import ROOT, RunningApp, config_data, start_app
from tests.test_app import NOTICE

PUBLIC = {
    *(f"/{p}_{e}" for p in ("battle", "named") for e in ("send", "regenerate", "stop", "new")),
    *(f"/{p}_vote_{o}" for p in ("battle", "named") for o in ("a", "b", "tie", "both_bad")),
    *(f"/chat_{e}" for e in ("send", "regenerate", "stop", "clear", "feedback")),
    "/leaderboard",
    "/leaderboard_by",
}
# names Gradio generated for the browser-only events before they were sealed (see arena.ui.common.seal_api)
INTERNAL_NAMES = ["on_send", "on_send_1", "on_send_2", "after_stop", "after_stop_1", "after_stop_2", "on_clear"]
INTERNAL_NAMES += ["on_like", "lambda", "compute", "compute_1", "unnamed", "unnamed_1", "false", "export"]


def fuzz(examples: int) -> settings:
    """Fixed (derandomized) examples, no deadline (each one is a real HTTP round trip), no example database."""
    return settings(
        max_examples=examples, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )


EXAMPLES: dict[str, int] = {}  # test → examples tried, reported at the end of the module


def sentence(text: str) -> bool:
    """One or more sentences for a person: ends like one, no traceback, no exception repr."""
    return bool(re.search(r"[.!?]\*?$", text.strip())) and "Traceback" not in text and "Error(" not in text


@pytest.fixture(scope="module")
def app(demo_models: DemoModels, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    data = config_data(demo_models, max_new_tokens=4)
    data["arena"]["limits"] = {"messages_per_minute": 0, "votes_per_hour": 0}
    running = start_app(data, tmp_path_factory.mktemp("fuzz-app"))
    yield running
    running.stop()


@pytest.fixture(scope="module", autouse=True)
def report(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        total = sum(EXAMPLES.values())
        with request.config.pluginmanager.getplugin("capturemanager").global_and_fixture_disabled():
            reporter.write_line(f"\ntest_fuzz: {total} examples tried: {EXAMPLES}")


def counted(name: str) -> None:
    EXAMPLES[name] = EXAMPLES.get(name, 0) + 1


def assert_still_sound(app: RunningApp) -> None:
    assert httpx.get(app.url + "config", timeout=30).status_code == 200, "the app stopped serving"
    assert invariant_violations(app.db_url) == []
    # Gradio prints its own input checks (too few values for an event) as tracebacks; none may come from our code
    log = app.log.read_text(errors="replace")
    ours = [t for t in log.split("Traceback (most recent call last):")[1:] if f"{ROOT}/arena/" in t]
    assert ours == [], ours[0][:4000] if ours else ""


# --- messages ---------------------------------------------------------------------------------------------------

ANY_TEXT = st.one_of(
    # gradio_client cannot send lone surrogates (it encodes UTF-8); the raw-HTTP test sends them
    st.text(st.characters(codec="utf-8"), max_size=250),
    st.text(st.sampled_from(["\x00", "\r", "\n", "\t", "\u202e", "\u200b", "\ufeff", " ", "a", "é"])),
    st.sampled_from(["<script>alert(1)</script>", "x" * 201, "x" * 100_000, "🦙" * 200, "\x00" * 50 + "ok"]),
)


def test_any_message_text_gets_an_answer_or_a_sentence(app: RunningApp) -> None:
    client = Client(app.url, verbose=False)

    @fuzz(40)
    @given(text=ANY_TEXT)
    def case(text: str) -> None:
        counted("message text")
        client.predict(api_name="/battle_new")
        notice = client.predict(text, api_name="/battle_send")[NOTICE]
        cleaned = clean_text(text).strip()
        if not cleaned:
            assert notice == "Please type a message first."
        elif len(cleaned) > 200:
            assert notice == f"Your message is {len(cleaned):,} characters long; the limit is 200. Please shorten it."
        else:
            assert notice == "" or sentence(notice), notice

    case()
    stored = [t for (t,) in rows(app.db_url, "SELECT content FROM messages WHERE role = 'user'")]
    assert stored and all(t == clean_text(t).strip() and len(t) <= 200 for t in stored)
    assert_still_sound(app)


# --- vote events in any order -------------------------------------------------------------------------------------

ACTIONS = ["/battle_send", "/battle_vote_a", "/battle_vote_b", "/battle_vote_tie", "/battle_vote_both_bad"]
ACTIONS += ["/battle_regenerate", "/battle_new", "/battle_stop", "/named_vote_a", "/named_send"]


def test_any_sequence_of_battle_events_keeps_one_vote_per_stored_round(app: RunningApp) -> None:
    @fuzz(25)
    @given(steps=st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=8))
    def case(steps: list[str]) -> None:
        counted("vote event sequences")
        client = Client(app.url, verbose=False)
        for step in steps:
            if step == "/battle_send":
                out = client.predict("Une question ?", api_name=step)
            elif step == "/named_send":
                out = client.predict("Une question ?", "demo-base", "demo-lora-a", api_name=step)
            elif step == "/battle_stop":
                client.predict(api_name=step)
                continue
            else:
                out = client.predict(api_name=step)
            assert out[NOTICE] in ("", "Thanks, your vote is recorded.") or sentence(out[NOTICE]), out[NOTICE]
        # a replayed vote on the same round is refused, never stored twice
        client.predict(api_name="/battle_vote_a")
        assert client.predict(api_name="/battle_vote_a")[NOTICE] != "Thanks, your vote is recorded."

    case()
    assert_still_sound(app)


# --- raw HTTP: wrong types, missing fields, huge payloads, forged sessions -------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def call(app: RunningApp, api_name: str, body: bytes, content_type: str = "application/json") -> tuple[int, str]:
    """POST /gradio_api/call/<api_name>, then read its result stream; (HTTP status, last SSE event name)."""
    url = f"{app.url}gradio_api/call{api_name}"
    posted = httpx.post(url, content=body, headers={"content-type": content_type}, timeout=60)
    if posted.status_code != 200:
        return posted.status_code, ""
    event_id = posted.json()["event_id"]
    with httpx.stream("GET", f"{url}/{event_id}", timeout=120) as stream:
        events = [line.removeprefix("event: ") for line in stream.iter_lines() if line.startswith("event: ")]
    return 200, events[-1] if events else ""


def test_raw_calls_with_junk_payloads_get_a_4xx_or_an_orderly_end(app: RunningApp) -> None:
    @fuzz(60)
    @given(api_name=st.sampled_from(sorted(PUBLIC)), data=JSON, wrap=st.booleans())
    def case(api_name: str, data: Any, wrap: bool) -> None:
        counted("raw /call payloads")
        body = {"data": data if isinstance(data, list) else [data]} if wrap else data
        status, event = call(app, api_name, json.dumps(body).encode())
        assert status in (200, 400, 404, 422) and (status != 200 or event in ("complete", "error")), (status, event)

    case()
    for api_name in ("/battle_send", "/chat_send", "/chat_feedback", "/leaderboard", "/leaderboard_by"):
        counted("raw /call payloads")
        huge = json.dumps({"data": ["x" * 5_000_000, None, None, None]}).encode()
        assert call(app, api_name, huge)[0] in (200, 413, 422)
        assert call(app, api_name, b"{not json")[0] == 422
        assert call(app, api_name, b"")[0] == 422
        assert call(app, api_name, b"data=1", "application/x-www-form-urlencoded")[0] == 422
        surrogates = b'{"data": ["\\ud800 lone \\udfff surrogates", "demo-base", null]}'
        assert call(app, api_name, surrogates)[0] in (200, 422)
    assert_still_sound(app)


def test_queue_join_with_forged_indices_and_sessions_is_refused_or_harmless(app: RunningApp) -> None:
    config = httpx.get(app.url + "config", timeout=30).json()
    fn_count = len(config["dependencies"])

    @fuzz(40)
    @given(
        fn_index=st.one_of(st.integers(-3, fn_count + 3), st.none(), st.text(max_size=4)),
        session=st.one_of(st.none(), st.text(max_size=40), st.just("x" * 10_000)),
        data=JSON,
    )
    def case(fn_index: Any, session: Any, data: Any) -> None:
        counted("queue/join forgeries")
        body = {"data": data if isinstance(data, list) else [data], "fn_index": fn_index, "session_hash": session}
        posted = httpx.post(f"{app.url}gradio_api/queue/join", json=body, timeout=60)
        assert posted.status_code in (200, 400, 404, 422), posted.status_code

    case()
    # a vote sent under a session that never asked anything finds no battle to vote on
    vote = next(d["id"] for d in config["dependencies"] if d.get("api_name") == "battle_vote_a")
    forged = secrets.token_hex(6)
    posted = httpx.post(
        f"{app.url}gradio_api/queue/join", json={"data": [None], "fn_index": vote, "session_hash": forged}, timeout=60
    )
    assert posted.status_code == 200
    with httpx.stream("GET", f"{app.url}gradio_api/queue/data", params={"session_hash": forged}, timeout=60) as s:
        messages = [json.loads(line[6:]) for line in s.iter_lines() if line.startswith("data: ")]
    final = next(m for m in messages if m.get("msg") == "process_completed")
    assert final["output"]["data"][NOTICE] == "Ask a question first: there is nothing to vote on yet."
    assert_still_sound(app)


def clear_refusal(call: Any) -> bool:
    """Our sentence, or Gradio's own one-line refusal of a value outside a component's choices."""
    try:
        answer = call()
    except AppError as exc:
        return "is not in the list of choices" in str(exc)
    return isinstance(answer, str) and sentence(answer)


# --- the API surface: only what is meant to be public ------------------------------------------------------------


def test_only_the_intended_endpoints_are_callable_by_name(app: RunningApp) -> None:
    info = httpx.get(app.url + "gradio_api/info", timeout=30).json()
    assert set(info["named_endpoints"]) == PUBLIC and info["unnamed_endpoints"] == {}
    config = httpx.get(app.url + "config", timeout=30).json()
    private = [d for d in config["dependencies"] if d.get("api_visibility") != "public"]
    assert private and all(d["api_name"] is None for d in private), "a browser-only event has a callable name"
    for name in INTERNAL_NAMES:
        counted("internal names probed")
        status, _ = call(app, f"/{name}", json.dumps({"data": [None, None, None]}).encode())
        assert status in (400, 404, 422), f"/gradio_api/call/{name} answered {status}"
    # the queue-skipping REST route is closed: every call waits its turn under the concurrency limits
    direct = httpx.post(f"{app.url}gradio_api/run/battle_send", json={"data": ["hi"]}, timeout=60)
    assert direct.status_code in (403, 404)
    # and every public endpoint refuses wrong types with a sentence through the official client
    client = Client(app.url, verbose=False)
    for junk in (12, None, 3.5):
        notice = client.predict(junk, api_name="/battle_send")[NOTICE]
        assert notice == "" or sentence(notice), notice
    assert clear_refusal(lambda: client.predict(["x"], "y", api_name="/chat_send")[2])
    assert clear_refusal(lambda: client.predict({"a": 1}, "??", ["nope"], 7, api_name="/chat_feedback")[0])
    assert clear_refusal(lambda: client.predict("Hi", "demo-base", "no-such-model", api_name="/named_send")[NOTICE])
    assert_still_sound(app)
