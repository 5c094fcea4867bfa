"""Controls a voter can read and trust: text labels that need no emoji font (the test Chromium has none), and no
control in a battle pane that hides an answer while its vote stays enabled."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tests.browser.conftest import Browser
from tests.browser.ui import message_count, send, votable, wait_text, watch_round
from tests.support.helpers import RunningApp

# Emoji, pictographs and the symbol blocks they come from (arrows, technical symbols such as the stop square,
# miscellaneous symbols, dingbats), plus the joiner and the variation selector that make a character an emoji.
# Geometric shapes such as Gradio's own accordion arrow are plain text in DejaVu: only the two emoji among them.
EMOJI = re.compile(
    "[\u2190-\u21ff\u2300-\u23ff\u25fd\u25fe\u2600-\u27bf\u2900-\u297f\u2b00-\u2bff\u3030\u303d"
    "\U0001f000-\U0001faff\u200d\ufe0f]"
)
TABS = ("Arena (battle)", "Side by side (named)", "Chat", "Leaderboard")

# every text a control shows or announces: buttons (with their aria-label and title), labels, tabs, radio and
# checkbox choices, the placeholders of text fields
CONTROL_TEXTS = """() => {
    const texts = [];
    const visible = (e) => !!(e.offsetWidth || e.offsetHeight || e.getClientRects().length);
    for (const e of document.querySelectorAll(
        'button, label, [role=tab], [role=button], [role=radio], [role=checkbox], [data-testid=block-info]'
    )) {
        if (!visible(e)) continue;
        texts.push(e.innerText, e.getAttribute('aria-label') || '', e.getAttribute('title') || '');
    }
    for (const e of document.querySelectorAll('input, textarea')) {
        if (visible(e)) texts.push(e.getAttribute('placeholder') || '', e.type === 'radio' ? e.value : '');
    }
    return texts.filter(t => t.trim());
}"""


def test_every_button_and_label_reads_without_an_emoji_font(
    arena_app: RunningApp, open_app: Callable[[str], Browser]
) -> None:
    b = open_app(arena_app.url)
    page = b.page
    seen: list[str] = []
    for tab in TABS:
        page.get_by_role("tab", name=tab).click()
        page.wait_for_timeout(300)  # the tab's panel is shown; its controls are already rendered
        if tab == "Chat":
            page.get_by_text("Rate an answer").click()  # open the rating form: its controls count too
            page.wait_for_selector("#chat-rating input")
            b.shot("chat-rating-form")
        seen += page.evaluate(CONTROL_TEXTS)
    assert {"A is better", "B is better", "Tie", "Both are bad", "Good answer", "Bad answer"} <= set(seen), seen
    assert {"Regenerate", "Stop", "New round", "Clear", "Save feedback", "Refresh"} <= set(seen), seen
    boxed = sorted({t for t in seen if EMOJI.search(t)})
    assert boxed == [], f"labels that need an emoji font: {boxed}"


def visible_pane_controls(page: Any, pane_id: str) -> list[str]:
    """The accessible names of the buttons a chat pane shows."""
    return list(
        page.evaluate(
            """(id) => [...document.querySelectorAll(`#${id} button`)]
                .filter(e => e.offsetWidth || e.offsetHeight || e.getClientRects().length)
                .map(e => e.getAttribute('aria-label') || e.getAttribute('title') || e.innerText.trim())""",
            pane_id,
        )
    )


def test_no_control_in_a_battle_pane_hides_an_answer_while_it_can_be_voted_on(
    arena_app: RunningApp, open_app: Callable[[str], Browser]
) -> None:
    b = open_app(arena_app.url)
    page = b.page
    for tab, prefix in (("Arena (battle)", "battle"), ("Side by side (named)", "named")):
        page.get_by_role("tab", name=tab).click()
        page.wait_for_selector(f"#{prefix}-input textarea")
        send(page, prefix, "Say something short.")
        watch_round(page, prefix)
        assert votable(page, prefix)
        b.shot(f"{prefix}-answered")
        for side in ("a", "b"):
            pane = f"{prefix}-pane-{side}"
            controls = visible_pane_controls(page, pane)
            # only each message's own copy button: Gradio's clear (bin) button in the pane's top panel is hidden
            assert controls and set(controls) == {"Copy message"}, (pane, controls)
            assert page.locator(f"#{pane} .top-panel").evaluate("e => getComputedStyle(e).display") == "none"

    # The Chat pane keeps its own clear button (nothing to vote on there): it clears the conversation itself, so
    # the next question starts a new one instead of resuming the hidden history.
    page.get_by_role("tab", name="Chat").click()
    for question in ("Hello", "Again"):
        send(page, "chat", question)
        page.wait_for_function(
            """() => document.querySelectorAll('#chat-pane [data-testid="bot"]').length === 1
                && document.querySelector('#chat-pane [data-testid="status-tracker"]').classList.contains('hide')"""
        )
        assert message_count(page, "chat-pane") == 2
        assert "Clear" in visible_pane_controls(page, "chat-pane")
        page.locator("#chat-pane button[aria-label='Like']").first.click()
        wait_text(page, "#chat-rating-status", "Saved: answer 1")
        page.click("#chat-pane .top-panel button[aria-label='Clear']")
        # the server has forgotten the conversation once the rating form it fills in is empty again
        page.wait_for_function("() => document.querySelector('#chat-answer input').value === ''")
        assert message_count(page, "chat-pane") == 0
