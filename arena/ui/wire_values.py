"""Component values in the form the page receives them, for the events bound with `postprocess=False`.

Gradio post-processes every output of every frame of a streamed answer: one worker-thread hop per output, and
for a chat pane one pydantic model per message. With ten outputs per battle frame that was ~1.9 ms of CPU per
frame; handing Gradio the values already in their wire form costs ~0.07 ms. Each function here produces exactly
what the component's own `postprocess` would (`tests/arena/ui/test_wire_values.py` holds them to it).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import gradio as gr

Serialise = Callable[[Any], Any]


def chat_messages(messages: Sequence[dict[str, str]] | None) -> list[dict[str, Any]]:
    """`gr.Chatbot.postprocess(messages).model_dump()` for plain text messages: a role and string content (the
    only messages Corral shows; metadata, options and files are not carried)."""
    return [
        {
            "role": m["role"],
            "metadata": None,
            "content": [{"text": inspect.cleandoc(m["content"]), "type": "text"}],
            "options": None,
        }
        for m in messages or ()
    ]


def _markdown(value: object) -> object:
    return None if value is None else inspect.cleandoc(str(value))


def _text(value: object) -> object:
    return None if value is None else str(value)


def _serialiser(component: gr.components.Component) -> Serialise:
    if isinstance(component, gr.Chatbot):
        if component.reasoning_tags:  # Gradio would split such messages in several: not mirrored here
            raise ValueError("a chat pane with reasoning tags needs Gradio's own post-processing")
        return chat_messages
    if isinstance(component, gr.Markdown):
        return _markdown
    if isinstance(component, gr.Textbox | gr.Button):
        return _text
    raise ValueError(f"no wire form is written for {type(component).__name__} outputs")


def _is_update(value: object) -> bool:
    return isinstance(value, dict) and value.get("__type__") == "update"


class WireOutputs:
    """Turns the values a handler returns for `components` into their wire form (updates keep their props)."""

    def __init__(self, components: Sequence[gr.components.Component]) -> None:
        """Pick each component's serialiser once; a component without one is refused here, at build time."""
        self._serialisers = [_serialiser(c) for c in components]

    def __call__(self, values: Sequence[Any]) -> tuple[Any, ...]:
        """The values in wire form, in the same order."""
        return tuple(self._one(serialise, value) for serialise, value in zip(self._serialisers, values, strict=True))

    @staticmethod
    def _one(serialise: Serialise, value: Any) -> Any:
        if isinstance(value, gr.blocks.Block):  # a component returned as an update: Gradio turns it into one
            return value
        if not _is_update(value):
            return serialise(value)
        if "value" not in value:
            return value
        return {**value, "value": serialise(value["value"])}
