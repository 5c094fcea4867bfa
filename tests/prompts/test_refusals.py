"""Conversations a format cannot express are refused with one sentence naming the format and the problem."""

from __future__ import annotations

import pytest

import prompts
from prompts import Message
from tests.prompts.cases import ANY_ORDER, assistant, system, user

ALL = [n for n in prompts.names() if n != prompts.TOKENIZER]
STRICT = [n for n in ALL if n not in ANY_ORDER]
WITH_SYSTEM = [n for n in STRICT if n not in ("belle", "belle_v2")]

ORDER_CASES: dict[str, tuple[list[Message], str]] = {
    "two users in a row": ([user("a"), user("b")], "cannot render two user messages in a row."),
    "two assistants in a row": (
        [user("a"), assistant("b"), assistant("c"), user("d")],
        "cannot render two assistant messages in a row.",
    ),
    "assistant first": ([assistant("a"), user("b")], "needs the conversation to start with a user message"),
    "assistant last": (
        [user("a"), assistant("b")],
        "cannot prompt for a reply after an assistant message; end the conversation with a user message.",
    ),
}


def _refusal(name: str, messages: list[Message], **kwargs: bool) -> str:
    with pytest.raises(prompts.PromptError) as info:
        prompts.render(name, messages, **kwargs)
    text = str(info.value)
    assert text.startswith(f"The {name} format ") and text.endswith(".") and "\n" not in text
    return text


@pytest.mark.parametrize("name", STRICT)
@pytest.mark.parametrize("case", ORDER_CASES)
def test_turn_order_is_checked(name: str, case: str) -> None:
    messages, problem = ORDER_CASES[case]
    assert problem in _refusal(name, messages)


@pytest.mark.parametrize("name", WITH_SYSTEM)
def test_system_message_only_in_first_position(name: str) -> None:
    text = _refusal(name, [user("a"), assistant("b"), system("c"), user("d")])
    assert text.endswith("accepts a system message only as the first message.")


@pytest.mark.parametrize("name", ["belle", "belle_v2"])
@pytest.mark.parametrize("where", [0, 2])
def test_belle_refuses_any_system_message(name: str, where: int) -> None:
    messages = [user("a"), assistant("b"), user("c")]
    messages.insert(where, system("Tu es BELLE."))
    assert _refusal(name, messages).endswith("has no system message; remove it from the conversation.")


@pytest.mark.parametrize("name", ALL)
def test_unknown_role(name: str) -> None:
    assert _refusal(name, [user("a"), Message(role="tool", content="42")]).endswith("has no role 'tool'.")


@pytest.mark.parametrize("name", ALL)
def test_empty_conversation(name: str) -> None:
    assert _refusal(name, []) == f"The {name} format cannot render an empty conversation."


@pytest.mark.parametrize("name", ALL)
def test_template_alone_refuses_an_empty_conversation(name: str) -> None:
    # What a server rendering the exported template sees: no Python check in front of it.
    with pytest.raises(prompts.PromptError, match=rf"^The {name} format cannot render an empty conversation\.$"):
        prompts.render_source(prompts.get(name).source, [])


@pytest.mark.parametrize("name", WITH_SYSTEM)
def test_system_message_alone_is_not_a_conversation(name: str) -> None:
    assert _refusal(name, [system("Tu es concis.")]) == f"The {name} format needs at least one user message."


def test_the_training_form_may_end_with_the_assistant() -> None:
    assert prompts.render("belle", [user("a"), assistant("b")], add_generation_prompt=False) == (
        "Human: a\n\nAssistant: b</s>"
    )


def test_chatml_accepts_any_order() -> None:
    assert prompts.render("chatml", [assistant("a"), assistant("b")]) == (
        "<|im_start|>assistant\na<|im_end|>\n<|im_start|>assistant\nb<|im_end|>\n<|im_start|>assistant\n"
    )


def test_unknown_format_and_tokenizer() -> None:
    with pytest.raises(prompts.PromptError, match=r"^Unknown prompt format 'nope'\. Known formats: tokenizer, "):
        prompts.render("nope", [user("a")])
    with pytest.raises(prompts.PromptError, match="rendered by the model's own tokenizer"):
        prompts.render(prompts.TOKENIZER, [user("a")])
