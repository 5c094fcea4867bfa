"""Counting a chat's prompt tokens on Corral's side, for servers that run any prompt length instead of refusing.

TGI, vLLM and llama.cpp refuse a prompt longer than their context (Corral turns that into the pane's sentence);
`transformers serve` runs it, past the model's trained length. An `openai` entry that names the model's
`tokenizer` and `max_input_tokens` gets the refusal from Corral instead, before anything is sent: the chat is
rendered with that tokenizer's own chat template (what the server applies) and its tokens counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from backends.base import InputTooLong, Message


class ContextGuardError(Exception):
    """The configured tokenizer cannot be loaded; one sentence."""


class ContextGuard:
    """Refuses chats whose rendered prompt has more than `max_input_tokens` tokens."""

    def __init__(self, tokenizer: Any, max_input_tokens: int) -> None:
        self._tokenizer = tokenizer
        self.max_input_tokens = max_input_tokens

    @classmethod
    def load(cls, reference: str, max_input_tokens: int) -> ContextGuard:
        """A guard with the tokenizer at `reference` (a folder, or a hub id when the hub is reachable)."""
        from transformers import AutoTokenizer  # only entries that ask for a guard pay for the import

        try:
            tokenizer = AutoTokenizer.from_pretrained(reference)
        except (OSError, ValueError) as exc:
            raise ContextGuardError(f"the tokenizer '{reference}' cannot be loaded ({type(exc).__name__})") from None
        if not getattr(tokenizer, "chat_template", None):
            raise ContextGuardError(f"the tokenizer '{reference}' has no chat template to count a chat with")
        return cls(tokenizer, max_input_tokens)

    def prompt_tokens(self, messages: Sequence[Message]) -> int:
        """How many tokens the chat is once rendered for the assistant's next answer."""
        rendered = self._tokenizer.apply_chat_template(
            [dict(m) for m in messages], add_generation_prompt=True, tokenize=False
        )
        return len(self._tokenizer(rendered, add_special_tokens=False)["input_ids"])

    def check(self, messages: Sequence[Message]) -> None:
        """InputTooLong when the chat does not fit."""
        count = self.prompt_tokens(messages)
        if count > self.max_input_tokens:
            raise InputTooLong(f"the prompt has {count} tokens; the model takes {self.max_input_tokens}")
