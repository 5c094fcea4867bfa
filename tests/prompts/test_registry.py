"""The format registry: names, stop strings, default system messages, template headers and the export helper."""

from __future__ import annotations

import pytest

import prompts
from tests.prompts.cases import (
    ALPACA_SYSTEM,
    VICUNA_SYSTEM,
    VIGOGNE_CHAT,
    VIGOGNE_CHAT_V1_SYSTEM_MESSAGE,
    VIGOGNE_FR,
    VIGOGNE_FR_V1,
    system,
    user,
)

REQUIRED = {
    "vigogne_instruct",
    "vigogne_chat_v1",
    "vigogne_chat_v2",
    "vigogne_chat_v3",
    "alpaca",
    "chinese_alpaca",
    "belle",
    "vicuna_v1.1",
    "llama-2",
    "chatml",
}

STOP = {
    "alpaca": ("</s>",),
    "alpaca_legacy": ("</s>",),
    "belle": ("</s>",),
    "belle_v2": ("</s>",),
    "chatml": ("<|im_end|>", "<|im_start|>"),
    "chinese_alpaca": ("</s>",),
    "llama-2": ("</s>",),
    "llama-3": ("<|eot_id|>", "<|end_of_text|>"),
    "vicuna_v1.1": ("</s>",),
    "vigogne_chat_v1": ("</s>", "<|USER|>", "<|ASSISTANT|>"),
    "vigogne_chat_v2": ("</s>", "<|user|>"),
    "vigogne_chat_v3": ("</s>",),
    "vigogne_instruct": ("</s>",),
    "vigogne_instruct_en_v3": ("</s>",),
    "vigogne_instruct_fr_v1": ("</s>",),
    "vigogne_instruct_fr_v2": ("</s>",),
}

DEFAULT_SYSTEM = {
    "alpaca": ALPACA_SYSTEM,
    "alpaca_legacy": ALPACA_SYSTEM,
    "belle": None,
    "belle_v2": None,
    "chatml": None,
    "chinese_alpaca": ALPACA_SYSTEM,
    "llama-2": None,
    "llama-3": None,
    "vicuna_v1.1": VICUNA_SYSTEM,
    "vigogne_chat_v1": VIGOGNE_CHAT_V1_SYSTEM_MESSAGE.removesuffix("\n"),  # the template writes that newline
    "vigogne_chat_v2": VIGOGNE_CHAT,
    "vigogne_chat_v3": VIGOGNE_CHAT,
    "vigogne_instruct": VIGOGNE_FR,
    "vigogne_instruct_en_v3": ALPACA_SYSTEM,
    "vigogne_instruct_fr_v1": VIGOGNE_FR_V1,
    "vigogne_instruct_fr_v2": VIGOGNE_FR,
}


def test_names() -> None:
    names = prompts.names()
    assert names[0] == prompts.TOKENIZER
    assert set(names) >= REQUIRED
    assert set(names) - {prompts.TOKENIZER} == set(STOP)
    # Every template file is registered, so none is unreachable.
    assert {p.stem for p in prompts.TEMPLATES.glob("*.jinja")} == set(STOP)


@pytest.mark.parametrize("name", sorted(STOP))
def test_stop_strings(name: str) -> None:
    assert prompts.stop_strings(name) == STOP[name]


def test_tokenizer_has_no_stop_strings() -> None:
    assert prompts.stop_strings(prompts.TOKENIZER) == ()


@pytest.mark.parametrize("name", sorted(DEFAULT_SYSTEM))
def test_default_system(name: str) -> None:
    assert prompts.get(name).default_system == DEFAULT_SYSTEM[name]


@pytest.mark.parametrize("name", sorted(STOP))
def test_description_and_header(name: str) -> None:
    fmt = prompts.get(name)
    assert fmt.description and "\n" not in fmt.description
    header = fmt.source.split("-#}", 1)[0]
    assert header.startswith(f"{{#- {name}: ")
    assert "BOS" in header


def test_with_default_system_keeps_an_explicit_one() -> None:
    assert prompts.with_default_system("alpaca", [user("a")])[0]["content"] == ALPACA_SYSTEM
    mine = [system(""), user("a")]
    assert prompts.with_default_system("alpaca", mine) == mine


def test_export_is_the_template_source() -> None:
    assert prompts.export_source("vicuna_v1.1") == prompts.get("vicuna_v1.1").source
    assert prompts.export_source("belle", embed_default_system=True) == prompts.get("belle").source


@pytest.mark.parametrize("name", [n for n, d in DEFAULT_SYSTEM.items() if d is not None])
def test_embedded_default_system_renders_like_render(name: str) -> None:
    source = prompts.export_source(name, embed_default_system=True)
    assert source.startswith(f"{{#- {name}: ")
    conversation = [user("Bonjour, qui es-tu ?")]
    assert prompts.render_source(source, conversation) == prompts.render(name, conversation)


def test_tokenizer_cannot_be_exported() -> None:
    with pytest.raises(prompts.PromptError, match="nothing to export"):
        prompts.export_source(prompts.TOKENIZER)
