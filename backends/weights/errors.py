"""The one exception the weight tools raise for user mistakes: its message is a sentence for the command line."""

from __future__ import annotations


class WeightsError(Exception):
    """A user-facing failure (missing path, shape or checksum mismatch); `str(error)` is one clear line."""

    def __init__(self, message: str) -> None:
        # Library messages quoted into ours may span lines; the CLI promises a single line.
        super().__init__(" ".join(message.split()))


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message, to quote a library error inside ours."""
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__
