"""Golden prompts of Alpaca, Chinese-Alpaca, BELLE, Vicuna, Llama-2, Llama-3 and ChatML (sources: each template)."""

from __future__ import annotations

import pytest

import prompts
from tests.prompts import cases
from tests.prompts.cases import ALPACA_SYSTEM, VICUNA_SYSTEM, assistant, system, user

GOLDEN: dict[str, dict[str, str]] = {
    "alpaca": cases.ALPACA_GOLDEN,
    "alpaca_legacy": {
        "single": ALPACA_SYSTEM + "\n\n### Instruction:\nBonjour, qui es-tu ?\n\n### Response:",
        "multi": ALPACA_SYSTEM
        + "\n\n### Instruction:\nWhat is 4x8?\n\n### Response:4x8 is 32.</s>\n\n### Instruction:\nAnd 5x8?\n\n"
        "### Response:",
        "custom": "Tu es un assistant concis.\n\n### Instruction:\nWhat is 4x8?\n\n### Response:4x8 is 32.</s>\n\n"
        "### Instruction:\nAnd 5x8?\n\n### Response:",
        "non_ascii": ALPACA_SYSTEM
        + "\n\n### Instruction:\n你好，请介绍一下你自己。\n\n### Response:저는 AI 비서입니다.</s>\n\n"
        "### Instruction:\nTrès bien, merci ! Et l'été ?\n\n### Response:",
    },
    "chinese_alpaca": {
        "single": ALPACA_SYSTEM + "\n\n### Instruction:\nBonjour, qui es-tu ?\n\n### Response: ",
        "multi": ALPACA_SYSTEM
        + "\n\n### Instruction:\nWhat is 4x8?\n\n### Response: 4x8 is 32.\n\n### Instruction:\nAnd 5x8?\n\n"
        "### Response: ",
        "custom": "Tu es un assistant concis.\n\n### Instruction:\nWhat is 4x8?\n\n### Response: 4x8 is 32.\n\n"
        "### Instruction:\nAnd 5x8?\n\n### Response: ",
        "non_ascii": ALPACA_SYSTEM
        + "\n\n### Instruction:\n你好，请介绍一下你自己。\n\n### Response: 저는 AI 비서입니다.\n\n"
        "### Instruction:\nTrès bien, merci ! Et l'été ?\n\n### Response: ",
    },
    # BELLE has no system slot: its custom-system case is a refusal (test_refusals.py).
    "belle": {
        "single": "Human: Bonjour, qui es-tu ?\n\nAssistant:",
        "multi": "Human: What is 4x8?\n\nAssistant: 4x8 is 32.</s>Human: And 5x8?\n\nAssistant:",
        "non_ascii": "Human: 你好，请介绍一下你自己。\n\nAssistant: 저는 AI 비서입니다.</s>"
        "Human: Très bien, merci ! Et l'été ?\n\nAssistant:",
    },
    "belle_v2": {
        "single": "Human: \nBonjour, qui es-tu ?\n\nAssistant: \n",
        "multi": "Human: \nWhat is 4x8?\n\nAssistant: \n4x8 is 32.</s>Human: \nAnd 5x8?\n\nAssistant: \n",
        "non_ascii": "Human: \n你好，请介绍一下你自己。\n\nAssistant: \n저는 AI 비서입니다.</s>"
        "Human: \nTrès bien, merci ! Et l'été ?\n\nAssistant: \n",
    },
    "vicuna_v1.1": {
        "single": VICUNA_SYSTEM + " USER: Bonjour, qui es-tu ? ASSISTANT:",
        "multi": VICUNA_SYSTEM + " USER: What is 4x8? ASSISTANT: 4x8 is 32.</s>USER: And 5x8? ASSISTANT:",
        "custom": "Tu es un assistant concis. USER: What is 4x8? ASSISTANT: 4x8 is 32.</s>USER: And 5x8? ASSISTANT:",
        "non_ascii": VICUNA_SYSTEM + " USER: 你好，请介绍一下你自己。 ASSISTANT: 저는 AI 비서입니다.</s>"
        "USER: Très bien, merci ! Et l'été ? ASSISTANT:",
    },
    # Llama-2 has no default system message: "single" is the no-system form.
    "llama-2": {
        "single": "[INST] Bonjour, qui es-tu ? [/INST]",
        "multi": "[INST] What is 4x8? [/INST] 4x8 is 32. </s><s>[INST] And 5x8? [/INST]",
        "custom": "[INST] <<SYS>>\nTu es un assistant concis.\n<</SYS>>\n\nWhat is 4x8? [/INST] 4x8 is 32. </s><s>"
        "[INST] And 5x8? [/INST]",
        "non_ascii": "[INST] 你好，请介绍一下你自己。 [/INST] 저는 AI 비서입니다. </s><s>"
        "[INST] Très bien, merci ! Et l'été ? [/INST]",
    },
    # Llama-3: a header per message, so the custom system message is simply the first message.
    "llama-3": {
        "single": "<|start_header_id|>user<|end_header_id|>\n\nBonjour, qui es-tu ?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
        "multi": "<|start_header_id|>user<|end_header_id|>\n\nWhat is 4x8?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n4x8 is 32.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nAnd 5x8?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
        "custom": "<|start_header_id|>system<|end_header_id|>\n\nTu es un assistant concis.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nWhat is 4x8?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n4x8 is 32.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nAnd 5x8?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
        "non_ascii": "<|start_header_id|>user<|end_header_id|>\n\n你好，请介绍一下你自己。<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n저는 AI 비서입니다.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nTrès bien, merci ! Et l'été ?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
    },
    "chatml": {
        "single": "<|im_start|>user\nBonjour, qui es-tu ?<|im_end|>\n<|im_start|>assistant\n",
        "multi": "<|im_start|>user\nWhat is 4x8?<|im_end|>\n<|im_start|>assistant\n4x8 is 32.<|im_end|>\n"
        "<|im_start|>user\nAnd 5x8?<|im_end|>\n<|im_start|>assistant\n",
        "custom": "<|im_start|>system\nTu es un assistant concis.<|im_end|>\n<|im_start|>user\nWhat is 4x8?<|im_end|>\n"
        "<|im_start|>assistant\n4x8 is 32.<|im_end|>\n<|im_start|>user\nAnd 5x8?<|im_end|>\n<|im_start|>assistant\n",
        "non_ascii": "<|im_start|>user\n你好，请介绍一下你自己。<|im_end|>\n"
        "<|im_start|>assistant\n저는 AI 비서입니다.<|im_end|>\n"
        "<|im_start|>user\nTrès bien, merci ! Et l'été ?<|im_end|>\n<|im_start|>assistant\n",
    },
}


@pytest.mark.parametrize(("name", "case"), cases.golden_cases(GOLDEN))
def test_golden_prompt(name: str, case: str) -> None:
    cases.check_golden(GOLDEN, name, case)


def test_vicuna_without_system_starts_at_user() -> None:
    # FastChat would write a leading space here; no model was trained on that.
    assert prompts.render("vicuna_v1.1", [system(""), user("What is 4x8?")]) == "USER: What is 4x8? ASSISTANT:"


def test_llama2_empty_system_writes_no_sys_block() -> None:
    assert prompts.render("llama-2", [system(""), user("Hi")]) == "[INST] Hi [/INST]"


def test_llama3_strips_message_whitespace_as_meta_does() -> None:
    assert prompts.render("llama-3", [user("  Hi there \n")], add_generation_prompt=False) == (
        "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
    )


def test_training_form_of_alpaca_and_llama2() -> None:
    conversation = [user("What is 4x8?"), assistant("4x8 is 32.")]
    assert prompts.render("alpaca", conversation, add_generation_prompt=False) == (
        ALPACA_SYSTEM + "\n\n### Instruction:\nWhat is 4x8?\n\n### Response:\n4x8 is 32.</s>\n\n"
    )
    assert (
        prompts.render("llama-2", conversation, add_generation_prompt=False)
        == "[INST] What is 4x8? [/INST] 4x8 is 32. </s>"
    )


def test_every_other_format_has_golden_prompts() -> None:
    others = {n for n in prompts.names() if not n.startswith("vigogne")} - {prompts.TOKENIZER}
    assert set(GOLDEN) == others
