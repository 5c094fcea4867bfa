"""Turning token ids into streamed text: incremental detokenisation and stop-string matching."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# A UTF-8 character spans at most 4 bytes; past this many held tokens the bytes are invalid, not incomplete.
MAX_HELD_TOKENS = 6


class IncrementalDecoder:
    """Decodes a growing list of token ids into text deltas, holding back incomplete UTF-8 sequences.

    Work per token is bounded: invalid byte runs are released (as U+FFFD) after a few tokens instead of being
    re-decoded forever, which would make decoding quadratic in the answer length.
    """

    def __init__(self, tokenizer: Any) -> None:
        self._tok = tokenizer
        self._ids: list[int] = []
        self._prefix = 0
        self._read = 0

    def add(self, token_id: int) -> str:
        """Append one token; return the text it completes (possibly empty)."""
        self._ids.append(token_id)
        prefix_text = self._decode(self._ids[self._prefix : self._read])
        new_text = self._decode(self._ids[self._prefix :])
        complete = not new_text.endswith("\ufffd") or len(self._ids) - self._read >= MAX_HELD_TOKENS
        if len(new_text) > len(prefix_text) and complete:
            self._prefix, self._read = self._read, len(self._ids)
            return new_text[len(prefix_text) :]
        return ""

    def _decode(self, ids: Sequence[int]) -> str:
        return str(self._tok.decode(ids, skip_special_tokens=True)) if ids else ""


class StopMatcher:
    """Cuts a text stream at the first stop string, holding back text that might begin one."""

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = [s for s in stops if s]
        self._pending = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """Add text; return what is safe to show now. Sets `stopped` once a stop string appears."""
        if self.stopped:
            return ""
        self._pending += text
        cut = min((i for i in (self._pending.find(s) for s in self._stops) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            out, self._pending = self._pending[:cut], ""
            return out
        hold = max((_overlap(self._pending, s) for s in self._stops), default=0)
        out = self._pending[: len(self._pending) - hold]
        self._pending = self._pending[len(out) :]
        return out

    def flush(self) -> str:
        """The text held back, at the end of the stream."""
        out, self._pending = ("" if self.stopped else self._pending), ""
        return out


def _overlap(text: str, stop: str) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of `stop`."""
    for n in range(min(len(text), len(stop) - 1), 0, -1):
        if text.endswith(stop[:n]):
            return n
    return 0
