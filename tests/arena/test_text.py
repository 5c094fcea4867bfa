"""Cleaning user and model text."""

from __future__ import annotations

import pytest

from arena.errors import InputRejected
from arena.text import ERROR_MARK, clean_text, clean_user_message, shows_error


def test_control_characters_and_surrogates_are_dropped() -> None:
    assert clean_text("a\x00b\x07c\td\r\ne\ud800f\x9b") == "abc\td\nef"


def test_unicode_text_is_kept() -> None:
    assert clean_user_message("  Bonjour, 你好, 안녕하세요 😀  ", max_chars=100) == "Bonjour, 你好, 안녕하세요 😀"


@pytest.mark.parametrize("text", ["", "   ", "\n\t", "\x00\x01"])
def test_empty_messages_are_refused(text: str) -> None:
    with pytest.raises(InputRejected, match="Please type a message first"):
        clean_user_message(text, max_chars=10)


def test_too_long_message_states_the_limit() -> None:
    with pytest.raises(InputRejected, match="12 characters long; the limit is 10"):
        clean_user_message("x" * 12, max_chars=10)


def test_non_text_is_refused() -> None:
    with pytest.raises(InputRejected, match="as text"):
        clean_user_message(None, max_chars=10)


def test_a_failed_answer_is_recognised_by_its_last_paragraph() -> None:
    assert shows_error(f"{ERROR_MARK} The model is busy.")
    assert shows_error(f"Half an answer\n\n{ERROR_MARK} The connection was lost.")
    assert not shows_error(f"{ERROR_MARK} in the middle\n\nthen a normal ending")
    assert not shows_error("Paris.")
