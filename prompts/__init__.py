"""Prompt formats as Hugging Face Jinja chat templates: render a conversation, and the stop strings of a format."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, TypedDict

import yaml
from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

TEMPLATES = Path(__file__).with_name("templates")
FORMATS_FILE = Path(__file__).with_name("formats.yaml")
# `tokenizer` means: use the chat template shipped in the model's own tokenizer files.
TOKENIZER = "tokenizer"
TOKENIZER_DESCRIPTION = (
    "The model's own chat template from its tokenizer files (rendered by the tokenizer, not Corral)."
)


class Message(TypedDict):
    """One chat message in the Hugging Face shape."""

    role: str
    content: str


class PromptError(ValueError):
    """A conversation the format cannot express, or an unknown format; the message is a sentence."""


@dataclass(frozen=True)
class PromptFormat:
    """A named prompt format: its Jinja source, stop strings and default system message."""

    name: str
    description: str
    source: str
    stop: tuple[str, ...]
    default_system: str | None


@lru_cache(maxsize=1)
def _formats() -> dict[str, PromptFormat]:
    raw = yaml.safe_load(FORMATS_FILE.read_text(encoding="utf-8"))
    return {
        name: PromptFormat(
            name=name,
            description=spec.get("description", ""),
            source=(TEMPLATES / f"{name}.jinja").read_text(encoding="utf-8"),
            stop=tuple(spec.get("stop") or ()),
            default_system=spec.get("default_system"),
        )
        for name, spec in raw.items()
    }


def names() -> list[str]:
    """All format names, `tokenizer` included."""
    return [TOKENIZER, *sorted(_formats())]


def get(name: str) -> PromptFormat:
    """The format called `name` (not `tokenizer`, which lives in each model's files)."""
    try:
        return _formats()[name]
    except KeyError:
        known = ", ".join(names())
        raise PromptError(f"Unknown prompt format '{name}'. Known formats: {known}.") from None


def stop_strings(name: str) -> tuple[str, ...]:
    """Strings that end a reply in format `name` (none for `tokenizer`: the model's EOS token does)."""
    return () if name == TOKENIZER else get(name).stop


def _raise(message: str) -> None:
    raise PromptError(message)


@lru_cache(maxsize=64)
def _compiled(source: str) -> Any:
    # The same environment options transformers uses for chat templates, so both render identically.
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.globals["raise_exception"] = _raise
    return env.from_string(source)


def render_source(source: str, messages: Sequence[Message], *, add_generation_prompt: bool = True, **extra: Any) -> str:
    """Render a chat template source for `messages`; raise PromptError when it cannot express them."""
    try:
        return str(
            _compiled(source).render(
                messages=[dict(m) for m in messages], add_generation_prompt=add_generation_prompt, **extra
            )
        )
    except PromptError:
        raise
    except TemplateError as exc:
        raise PromptError(f"The prompt template could not be rendered: {exc}.") from exc


def with_default_system(name: str, messages: Sequence[Message]) -> list[Message]:
    """Prepend the format's default system message when the conversation has none."""
    out = [Message(role=m["role"], content=m["content"]) for m in messages]
    fmt = get(name)
    if fmt.default_system is not None and not (out and out[0]["role"] == "system"):
        out.insert(0, Message(role="system", content=fmt.default_system))
    return out


def render(name: str, messages: Sequence[Message], add_generation_prompt: bool = True) -> str:
    """The prompt string for `messages` in format `name`, default system message included."""
    if name == TOKENIZER:
        raise PromptError("The 'tokenizer' format is rendered by the model's own tokenizer, not by Corral.")
    fmt = get(name)
    if not messages:
        # Checked before the default system message is added, which would hide that nothing was asked.
        raise PromptError(f"The {name} format cannot render an empty conversation.")
    return render_source(fmt.source, with_default_system(name, messages), add_generation_prompt=add_generation_prompt)


def export_source(name: str, *, embed_default_system: bool = False) -> str:
    """The Jinja source of format `name` for TGI / vLLM, optionally applying its default system message itself."""
    if name == TOKENIZER:
        raise PromptError("The 'tokenizer' format is the model's own chat template; there is nothing to export.")
    fmt = get(name)
    if not embed_default_system or fmt.default_system is None:
        return fmt.source
    # A server applies only the template, so the default system message has to live inside it. The JSON literal
    # (ASCII-only escapes) is also a valid Jinja string literal.
    literal = json.dumps(fmt.default_system, ensure_ascii=True)
    prelude = (
        "{#- Added by `python -m prompts export --embed-default-system`: the format's default system message. -#}\n"
        "{%- if not (messages and messages[0]['role'] == 'system') -%}\n"
        f"{{%- set messages = [{{'role': 'system', 'content': {literal}}}] + messages -%}}\n"
        "{%- endif -%}\n"
    )
    # Keep the format's header comment first, so the exported file still opens with its explanation.
    end = fmt.source.find("-#}\n") + len("-#}\n") if fmt.source.startswith("{#") else 0
    return fmt.source[:end] + prelude + fmt.source[end:]
