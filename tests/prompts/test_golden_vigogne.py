"""Golden prompts of the Vigogne formats, written out from the strings the sources give (seed-prompt-formats.md §1)."""

from __future__ import annotations

import pytest

import prompts
from tests.prompts import cases
from tests.prompts.cases import (
    CUSTOM_SYSTEM,
    VIGOGNE_CHAT,
    VIGOGNE_CHAT_V1_SYSTEM_MESSAGE,
    VIGOGNE_FR,
    VIGOGNE_FR_V1,
    assistant,
    system,
    user,
)

GOLDEN: dict[str, dict[str, str]] = {
    "vigogne_instruct": {
        "single": "### System:\n" + VIGOGNE_FR + "\n\n### Instruction:\nBonjour, qui es-tu ?\n\n### Response:\n",
        "multi": "### System:\n"
        + VIGOGNE_FR
        + "\n\n### Instruction:\nWhat is 4x8?\n\n### Response:\n4x8 is 32.</s>\n\n### Instruction:\nAnd 5x8?\n\n"
        "### Response:\n",
        "custom": "### System:\nTu es un assistant concis.\n\n### Instruction:\nWhat is 4x8?\n\n### Response:\n"
        "4x8 is 32.</s>\n\n### Instruction:\nAnd 5x8?\n\n### Response:\n",
        "non_ascii": "### System:\n"
        + VIGOGNE_FR
        + "\n\n### Instruction:\n你好，请介绍一下你自己。\n\n### Response:\n저는 AI 비서입니다.</s>\n\n"
        "### Instruction:\nTrès bien, merci ! Et l'été ?\n\n### Response:\n",
    },
    "vigogne_instruct_fr_v1": {
        "single": VIGOGNE_FR_V1 + "\n\n### Instruction:\nBonjour, qui es-tu ?\n\n### Réponse:\n",
        "multi": VIGOGNE_FR_V1
        + "\n\n### Instruction:\nWhat is 4x8?\n\n### Réponse:\n4x8 is 32.</s>\n\n### Instruction:\nAnd 5x8?\n\n"
        "### Réponse:\n",
        "custom": "Tu es un assistant concis.\n\n### Instruction:\nWhat is 4x8?\n\n### Réponse:\n4x8 is 32.</s>\n\n"
        "### Instruction:\nAnd 5x8?\n\n### Réponse:\n",
        "non_ascii": VIGOGNE_FR_V1
        + "\n\n### Instruction:\n你好，请介绍一下你自己。\n\n### Réponse:\n저는 AI 비서입니다.</s>\n\n"
        "### Instruction:\nTrès bien, merci ! Et l'été ?\n\n### Réponse:\n",
    },
    "vigogne_instruct_fr_v2": {
        "single": VIGOGNE_FR + "\n\n### Instruction:\nBonjour, qui es-tu ?\n\n### Réponse:\n",
        "multi": VIGOGNE_FR
        + "\n\n### Instruction:\nWhat is 4x8?\n\n### Réponse:\n4x8 is 32.</s>\n\n### Instruction:\nAnd 5x8?\n\n"
        "### Réponse:\n",
        "custom": "Tu es un assistant concis.\n\n### Instruction:\nWhat is 4x8?\n\n### Réponse:\n4x8 is 32.</s>\n\n"
        "### Instruction:\nAnd 5x8?\n\n### Réponse:\n",
        "non_ascii": VIGOGNE_FR
        + "\n\n### Instruction:\n你好，请介绍一下你自己。\n\n### Réponse:\n저는 AI 비서입니다.</s>\n\n"
        "### Instruction:\nTrès bien, merci ! Et l'été ?\n\n### Réponse:\n",
    },
    "vigogne_instruct_en_v3": cases.ALPACA_GOLDEN,  # English V3 is the Alpaca format exactly
    "vigogne_chat_v1": {
        "single": VIGOGNE_CHAT_V1_SYSTEM_MESSAGE + "\n<|USER|>: Bonjour, qui es-tu ?\n<|ASSISTANT|>:",
        "multi": VIGOGNE_CHAT_V1_SYSTEM_MESSAGE
        + "\n<|USER|>: What is 4x8?\n<|ASSISTANT|>: 4x8 is 32.</s>\n<|USER|>: And 5x8?\n<|ASSISTANT|>:",
        "custom": "Tu es un assistant concis.\n\n<|USER|>: What is 4x8?\n<|ASSISTANT|>: 4x8 is 32.</s>\n"
        "<|USER|>: And 5x8?\n<|ASSISTANT|>:",
        "non_ascii": VIGOGNE_CHAT_V1_SYSTEM_MESSAGE
        + "\n<|USER|>: 你好，请介绍一下你自己。\n<|ASSISTANT|>: 저는 AI 비서입니다.</s>\n"
        "<|USER|>: Très bien, merci ! Et l'été ?\n<|ASSISTANT|>:",
    },
    "vigogne_chat_v2": {
        "single": "<|system|>: " + VIGOGNE_CHAT + "\n<|user|>: Bonjour, qui es-tu ?\n<|assistant|>:",
        "multi": "<|system|>: "
        + VIGOGNE_CHAT
        + "\n<|user|>: What is 4x8?\n<|assistant|>: 4x8 is 32.</s>\n<|user|>: And 5x8?\n<|assistant|>:",
        "custom": "<|system|>: Tu es un assistant concis.\n<|user|>: What is 4x8?\n<|assistant|>: 4x8 is 32.</s>\n"
        "<|user|>: And 5x8?\n<|assistant|>:",
        "non_ascii": "<|system|>: "
        + VIGOGNE_CHAT
        + "\n<|user|>: 你好，请介绍一下你自己。\n<|assistant|>: 저는 AI 비서입니다.</s>\n"
        "<|user|>: Très bien, merci ! Et l'été ?\n<|assistant|>:",
    },
    "vigogne_chat_v3": {
        "single": "[INST] <<SYS>>\n" + VIGOGNE_CHAT + "\n<</SYS>>\n\nBonjour, qui es-tu ? [/INST]",
        "multi": "[INST] <<SYS>>\n"
        + VIGOGNE_CHAT
        + "\n<</SYS>>\n\nWhat is 4x8? [/INST] 4x8 is 32. </s>[INST] And 5x8? [/INST]",
        "custom": "[INST] <<SYS>>\nTu es un assistant concis.\n<</SYS>>\n\nWhat is 4x8? [/INST] 4x8 is 32. </s>"
        "[INST] And 5x8? [/INST]",
        "non_ascii": "[INST] <<SYS>>\n"
        + VIGOGNE_CHAT
        + "\n<</SYS>>\n\n你好，请介绍一下你自己。 [/INST] 저는 AI 비서입니다. </s>"
        "[INST] Très bien, merci ! Et l'été ? [/INST]",
    },
}


@pytest.mark.parametrize(("name", "case"), cases.golden_cases(GOLDEN))
def test_golden_prompt(name: str, case: str) -> None:
    cases.check_golden(GOLDEN, name, case)


def test_chat_v2_keeps_the_system_line_for_an_empty_system_message() -> None:
    assert (
        prompts.render("vigogne_chat_v2", [system(""), user("Salut")])
        == "<|system|>: \n<|user|>: Salut\n<|assistant|>:"
    )


def test_chat_v3_writes_no_sys_block_for_an_empty_system_message() -> None:
    assert prompts.render("vigogne_chat_v3", [system(""), user("Salut")]) == "[INST] Salut [/INST]"


def test_training_form_ends_with_the_last_reply_and_eos() -> None:
    conversation = [system(CUSTOM_SYSTEM), user("Salut"), assistant("Bonjour !")]
    assert prompts.render("vigogne_chat_v2", conversation, add_generation_prompt=False) == (
        "<|system|>: Tu es un assistant concis.\n<|user|>: Salut\n<|assistant|>: Bonjour !</s>\n"
    )
    assert prompts.render("vigogne_chat_v1", conversation, add_generation_prompt=False) == (
        "Tu es un assistant concis.\n\n<|USER|>: Salut\n<|ASSISTANT|>: Bonjour !</s>"
    )


def test_every_vigogne_format_has_golden_prompts() -> None:
    vigogne = {n for n in prompts.names() if n.startswith("vigogne")}
    assert set(GOLDEN) == vigogne
