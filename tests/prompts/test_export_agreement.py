"""Each exported template gives, through transformers' apply_chat_template, the same string as prompts.render."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from jinja2 import TemplateError
from transformers import AutoTokenizer

import prompts
from backends.demo import DemoModels
from prompts.__main__ import main
from tests.prompts.cases import ANY_ORDER, CONVERSATIONS, assistant, system, user

NAMES = [n for n in prompts.names() if n != prompts.TOKENIZER]
NO_SYSTEM_SLOT = {"belle", "belle_v2"}
CASES = [
    (name, case)
    for name in NAMES
    for case, conversation in CONVERSATIONS.items()
    if not (name in NO_SYSTEM_SLOT and conversation[0]["role"] == "system")
]


@pytest.fixture(scope="module")
def tokenizer(demo_models: DemoModels) -> Any:
    """The demo model's tokenizer: its own chat template is ChatML, so every test passes chat_template explicitly."""
    return AutoTokenizer.from_pretrained(demo_models.base)


def exported(name: str, out: Path, *flags: str) -> str:
    """Export format `name` through the CLI entry point and read the file back."""
    assert main(["export", name, "--out", str(out), *flags]) == 0
    return out.read_text(encoding="utf-8")


def hf_render(tokenizer: Any, source: str, messages: list[prompts.Message], generation: bool = True) -> str:
    """The prompt transformers renders from `source`."""
    return str(
        tokenizer.apply_chat_template(
            [dict(m) for m in messages], chat_template=source, tokenize=False, add_generation_prompt=generation
        )
    )


@pytest.mark.parametrize(("name", "case"), CASES)
def test_export_agrees_with_render(tokenizer: Any, tmp_path: Path, name: str, case: str) -> None:
    source = exported(name, tmp_path / f"{name}.jinja")
    # apply_chat_template does not know Corral's default system message, so it is passed in explicitly.
    messages = prompts.with_default_system(name, CONVERSATIONS[case])
    assert hf_render(tokenizer, source, messages) == prompts.render(name, CONVERSATIONS[case])


@pytest.mark.parametrize("name", NAMES)
def test_export_agrees_without_generation_prompt(tokenizer: Any, tmp_path: Path, name: str) -> None:
    source = exported(name, tmp_path / f"{name}.jinja")
    messages = prompts.with_default_system(name, [user("What is 4x8?"), assistant("4x8 is 32.")])
    assert hf_render(tokenizer, source, messages, generation=False) == prompts.render(
        name, messages, add_generation_prompt=False
    )


@pytest.mark.parametrize("name", NAMES)
def test_embedded_default_system_needs_no_system_message(tokenizer: Any, tmp_path: Path, name: str) -> None:
    source = exported(name, tmp_path / f"{name}.jinja", "--embed-default-system")
    conversation = CONVERSATIONS["multi"]
    assert hf_render(tokenizer, source, conversation) == prompts.render(name, conversation)


@pytest.mark.parametrize("name", [n for n in NAMES if n not in ANY_ORDER])
def test_exported_refusal_reaches_transformers(tokenizer: Any, tmp_path: Path, name: str) -> None:
    source = exported(name, tmp_path / f"{name}.jinja")
    with pytest.raises(TemplateError, match=rf"^The {name} format cannot render two user messages in a row\.$"):
        hf_render(tokenizer, source, [user("a"), user("b")])


def test_belle_system_refusal_reaches_transformers(tokenizer: Any, tmp_path: Path) -> None:
    source = exported("belle", tmp_path / "belle.jinja")
    with pytest.raises(TemplateError, match=r"^The belle format has no system message"):
        hf_render(tokenizer, source, [system("x"), user("a")])
