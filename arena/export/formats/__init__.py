"""The export formats: one table, the single place a format is declared (its record lives in its own module).

The export run, the writers, the dataset card, the command line and the Export tab look a format up here and read
all they need from its `ExportFormat` record; adding a format is one module with its record and one line below.
"""

from __future__ import annotations

from arena.export.formats.base import ExportFormat, Judges, Shaped, Shaping, Skip
from arena.export.formats.chatml import CHATML
from arena.export.formats.kto import KTO
from arena.export.formats.lmsys import LMSYS
from arena.export.formats.preference import DPO, REWARD
from arena.export.formats.raw import RAW
from arena.export.writers import ExportError

FORMATS: dict[str, ExportFormat] = {fmt.name: fmt for fmt in (DPO, KTO, REWARD, LMSYS, RAW, CHATML)}

__all__ = ["FORMATS", "ExportFormat", "Judges", "Shaped", "Shaping", "Skip", "get", "with_margin"]


def get(name: str) -> ExportFormat:
    """The format called `name`; an unknown name is refused with a sentence naming the choices."""
    try:
        return FORMATS[name]
    except KeyError:
        raise ExportError(f"Unknown format {name!r}: choose one of {', '.join(FORMATS)}.") from None


def with_margin() -> str:
    """The formats that take a margin column, in words ("reward")."""
    return " or ".join(name for name, fmt in FORMATS.items() if fmt.margin)
