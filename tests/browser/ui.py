"""Driving Corral's Gradio page: typing, waiting for conditions, reading panes, searching the whole DOM."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from gradio_client.utils import apply_diff

OUTCOMES = ("a", "b", "tie", "both_bad")
POLL_MS = 40  # how often a stream is sampled while it grows (sampling only; nothing asserts on time)


def send(page: Any, prefix: str, text: str) -> None:
    """Type a message into a tab's input box and press its Send button."""
    page.fill(f"#{prefix}-input textarea", text)
    page.click(f"#{prefix}-send")


def last_bot_text(page: Any, pane_id: str) -> str:
    """The text of the last assistant message shown in a chat pane ('' if none)."""
    return str(
        page.evaluate(
            """(id) => {
                const bots = document.querySelectorAll(`#${id} [data-testid="bot"]`);
                return bots.length ? bots[bots.length - 1].innerText : "";
            }""",
            pane_id,
        )
    )


def message_count(page: Any, pane_id: str) -> int:
    """How many user and assistant messages a chat pane shows."""
    return int(page.locator(f'#{pane_id} [data-testid="user"], #{pane_id} [data-testid="bot"]').count())


def settled(page: Any, prefix: str) -> bool:
    """Whether the tab's last event is over: Gradio hides both panes' status trackers when it completes."""
    return bool(
        page.evaluate(
            """(p) => ['a', 'b'].every(s => document.querySelector(
                `#${p}-pane-${s} [data-testid="status-tracker"]`).classList.contains('hide'))""",
            prefix,
        )
    )


def votable(page: Any, prefix: str) -> bool:
    """Whether all four vote buttons of a battle tab are enabled."""
    return bool(
        page.evaluate(
            "(p) => ['a','b','tie','both_bad'].every(o => !document.querySelector(`#${p}-vote-${o}`).disabled)",
            prefix,
        )
    )


def wait_votable(page: Any, prefix: str, *, enabled: bool = True) -> None:
    """Wait until the vote buttons of a battle tab are all enabled (or all disabled)."""
    page.wait_for_function(
        "([p, on]) => ['a','b','tie','both_bad'].every(o => document.querySelector(`#${p}-vote-${o}`).disabled !== on)",
        arg=[prefix, enabled],
    )


def wait_text(page: Any, selector: str, needle: str) -> None:
    """Wait until the element's text contains `needle`."""
    page.wait_for_function(
        "([s, n]) => { const e = document.querySelector(s); return !!e && e.innerText.includes(n); }",
        arg=[selector, needle],
    )


@dataclass
class Growth:
    """What two panes showed while a round streamed."""

    a: list[str] = field(default_factory=list)
    b: list[str] = field(default_factory=list)

    def distinct(self, side: str) -> list[str]:
        """The successive different texts a pane showed (without repeats)."""
        out: list[str] = []
        for text in getattr(self, side):
            if not out or out[-1] != text:
                out.append(text)
        return out


def watch_round(page: Any, prefix: str, *, on_sample: Any = None) -> Growth:
    """Sample both panes until the round is votable and its event is over; returns every text each pane showed."""
    growth = Growth()
    while True:
        done = votable(page, prefix) and settled(
            page, prefix
        )  # read first: a sample taken after it still belongs to the round
        growth.a.append(last_bot_text(page, f"{prefix}-pane-a"))
        growth.b.append(last_bot_text(page, f"{prefix}-pane-b"))
        if on_sample is not None:
            on_sample(growth)
        if done:
            return growth
        page.wait_for_timeout(POLL_MS)


def whole_dom(page: Any) -> str:
    """The serialised DOM of every frame, plus every form field's current value (not in the markup)."""
    parts = []
    for frame in page.frames:
        parts.append(frame.content())
        parts.extend(
            frame.evaluate("() => [...document.querySelectorAll('input, textarea, select')].map(e => String(e.value))")
        )
        parts.append(frame.evaluate("() => document.title + '\\n' + (document.body ? document.body.innerText : '')"))
    return "\n".join(parts)


def words(text: str) -> set[str]:
    """The words of at least four letters in a text (markdown rendering keeps these intact)."""
    return {w for w in re.findall(r"\w{4,}", text) if not w.isdigit()}


def replayed_streams(messages: list[dict[str, Any]]) -> dict[str, tuple[list[Any], list[Any], int]]:
    """For each streaming event: its outputs rebuilt from the first full update plus every diff after it, its
    final outputs as sent on completion, and how many updates were streamed."""
    state: dict[str, list[Any]] = {}
    counts: dict[str, int] = {}
    result = {}
    for m in messages:
        event = str(m.get("event_id"))
        output = m.get("output") or {}
        if m.get("msg") == "process_generating":
            counts[event] = counts.get(event, 0) + 1
            if event not in state:
                state[event] = output["data"]
            else:
                state[event] = [apply_diff(old, d) for old, d in zip(state[event], output["data"], strict=True)]
        elif m.get("msg") == "process_completed" and event in state:
            result[event] = (state[event], output["data"], counts[event])
    return result
