"""The contract every backend meets: stream text chunks for a chat, and errors that carry a sentence for users."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from prompts import Message

__all__ = ["Message"]


class GenerationParams(BaseModel):
    """Sampling parameters a backend honours (TGI's names and validation ranges)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_new_tokens: int = Field(default=256, ge=1, le=32768)
    do_sample: bool = True  # false: greedy (TGI's default when no sampling parameter is set)
    temperature: float = Field(default=0.7, gt=0.0, le=10.0)
    top_p: float | None = Field(default=0.95, gt=0.0, lt=1.0)
    top_k: int | None = Field(default=None, gt=0)
    repetition_penalty: float | None = Field(default=None, gt=0.0)
    seed: int | None = Field(default=None, ge=0)
    stop: tuple[str, ...] = Field(default=(), max_length=4)

    @model_validator(mode="before")
    @classmethod
    def _zero_temperature_is_greedy(cls, data: Any) -> Any:
        """`temperature: 0` means greedy decoding, as on OpenAI-style chat routes (TGI's /generate has no such
        value: greedy is `do_sample: false` there, which every backend kind turns into its server's greedy)."""
        if isinstance(data, dict) and data.get("temperature") == 0 and not isinstance(data["temperature"], bool):
            return {**{k: v for k, v in data.items() if k != "temperature"}, "do_sample": False}
        return data


@dataclass(frozen=True)
class Chunk:
    """A piece of streamed text and how many generated tokens it covers."""

    text: str
    tokens: int = 1


class Backend(Protocol):
    """A model that can answer a chat by streaming text."""

    def stream(self, messages: Sequence[Message], params: GenerationParams) -> AsyncIterator[Chunk]:
        """Stream the assistant's next message for `messages`; raise BackendError on failure."""
        ...

    @property
    def available(self) -> bool:
        """Whether the model can answer now (unavailable models are left out of new battles)."""
        ...

    async def aclose(self) -> None:
        """Release connections, threads or models."""
        ...


class BackendError(Exception):
    """A backend failure; `user_message` is the sentence shown in the pane, the args go to the log."""

    user_message = "The model could not answer. Please try again in a moment."


class BackendUnavailable(BackendError):
    """The backend cannot be reached."""

    user_message = "The model is not reachable right now. Please try again later."


class BackendOverloaded(BackendError):
    """The backend refused the request because it is busy."""

    user_message = "The model is busy right now. Please try again in a moment."


class BackendTimeout(BackendError):
    """The backend did not answer in time."""

    user_message = "The model took too long to answer."


class InputTooLong(BackendError):
    """The conversation does not fit the model's context."""

    user_message = "The conversation is too long for this model. Please start a new round."


class GenerationFailed(BackendError):
    """The backend failed while generating."""

    user_message = "The model stopped with an error while answering."
