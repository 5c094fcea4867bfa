"""Conversations and the model cards' default system messages, shared by the prompt-format tests."""

from __future__ import annotations

import prompts
from prompts import Message


def system(content: str) -> Message:
    """A system message."""
    return Message(role="system", content=content)


def user(content: str) -> Message:
    """A user message."""
    return Message(role="user", content=content)


def assistant(content: str) -> Message:
    """An assistant message."""
    return Message(role="assistant", content=content)


CUSTOM_SYSTEM = "Tu es un assistant concis."

# The four conversations every format is checked on (see GOLDEN in the test modules).
SINGLE = [user("Bonjour, qui es-tu ?")]
MULTI = [user("What is 4x8?"), assistant("4x8 is 32."), user("And 5x8?")]
CUSTOM = [system(CUSTOM_SYSTEM), *MULTI]
NON_ASCII = [user("你好，请介绍一下你自己。"), assistant("저는 AI 비서입니다."), user("Très bien, merci ! Et l'été ?")]
CONVERSATIONS = {"single": SINGLE, "multi": MULTI, "custom": CUSTOM, "non_ascii": NON_ASCII}

# Formats that can express any order of turns; every other format is a strict user/assistant alternation.
ANY_ORDER = {"chatml", "llama-3"}


def golden_cases(golden: dict[str, dict[str, str]]) -> list[tuple[str, str]]:
    """The (format, conversation) pairs of a GOLDEN table, for `pytest.mark.parametrize`."""
    return [(name, case) for name, by_case in golden.items() for case in by_case]


def check_golden(golden: dict[str, dict[str, str]], name: str, case: str) -> None:
    """`prompts.render` gives exactly the golden prompt of format `name` for conversation `case`."""
    assert prompts.render(name, CONVERSATIONS[case]) == golden[name][case]


# Default system messages as the reference quotes them from the sources (seed-prompt-formats.md).
ALPACA_SYSTEM = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request."
)
VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)
VIGOGNE_FR_V1 = (
    "Ci-dessous se trouve une instruction qui décrit une tâche. "
    "Écrivez une réponse qui complète correctement la demande."
)
VIGOGNE_FR = (
    "Ci-dessous se trouve une instruction qui décrit une tâche à accomplir. "
    "Rédigez une réponse qui répond de manière précise à la demande."
)
VIGOGNE_CHAT = (
    "Vous êtes Vigogne, un assistant IA créé par Zaion Lab. "
    "Vous suivez extrêmement bien les instructions. Aidez autant que vous le pouvez."
)
# The repo's SYSTEM_MESSAGE verbatim, final newline included: the chat v1 prompt starts with exactly this.
VIGOGNE_CHAT_V1_SYSTEM_MESSAGE = (
    "Below is a conversation between a user and an AI assistant named Vigogne.\n"
    "Vigogne is an open-source AI assistant created by Zaion (https://zaion.ai/).\n"
    "Vigogne is polite, emotionally aware, humble-but-knowledgeable, always providing helpful and detailed answers.\n"
    "Vigogne is skilled in responding proficiently in the languages its users use and can perform a wide range of "
    "tasks such as text editing, translation, question answering, logical reasoning, coding, and many others.\n"
    "Vigogne cannot receive or generate audio or visual content and cannot access the internet.\n"
    "Vigogne strictly avoids discussing sensitive, offensive, illegal, ethical, or political topics and caveats "
    "when unsure of the answer.\n"
)

# The Alpaca format's golden prompts (alpaca and vigogne_instruct_en_v3 are the same format).
ALPACA_GOLDEN = {
    "single": ALPACA_SYSTEM + "\n\n### Instruction:\nBonjour, qui es-tu ?\n\n### Response:\n",
    "multi": ALPACA_SYSTEM
    + "\n\n### Instruction:\nWhat is 4x8?\n\n### Response:\n4x8 is 32.</s>\n\n### Instruction:\nAnd 5x8?\n\n"
    "### Response:\n",
    "custom": "Tu es un assistant concis.\n\n### Instruction:\nWhat is 4x8?\n\n### Response:\n4x8 is 32.</s>\n\n"
    "### Instruction:\nAnd 5x8?\n\n### Response:\n",
    "non_ascii": ALPACA_SYSTEM
    + "\n\n### Instruction:\n你好，请介绍一下你自己。\n\n### Response:\n저는 AI 비서입니다.</s>\n\n"
    "### Instruction:\nTrès bien, merci ! Et l'été ?\n\n### Response:\n",
}
