"""Cleaning text that strangers type and that models print, and the mark a failed answer carries in its pane."""

from __future__ import annotations

import re

from arena.errors import InputRejected

# C0/C1 controls except tab and newline, plus lone UTF-16 surrogates (not encodable, break JSON and databases).
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def clean_text(text: str) -> str:
    """Drop control characters and lone surrogates; normalise line ends."""
    return _UNSAFE.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def clean_user_message(text: object, *, max_chars: int) -> str:
    """The message to send, or InputRejected with a sentence saying why not."""
    if not isinstance(text, str):
        raise InputRejected("Please type a message as text.")
    cleaned = clean_text(text).strip()
    if not cleaned:
        raise InputRejected("Please type a message first.")
    if len(cleaned) > max_chars:
        raise InputRejected(
            f"Your message is {len(cleaned):,} characters long; the limit is {max_chars:,}. Please shorten it."
        )
    return cleaned


ERROR_MARK = "Error:"  # before a failed answer's sentence in its pane (text, not an emoji: no emoji font needed)


def shows_error(text: str) -> bool:
    """Whether a pane's last answer is a failed one: its last paragraph is the error sentence after ERROR_MARK."""
    return text.rpartition("\n\n")[2].startswith(ERROR_MARK)
