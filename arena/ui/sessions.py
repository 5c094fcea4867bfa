"""Gradio's per-session state, made without serialising the whole page for every new visitor.

When a session sends its first event, Gradio's `SessionState` builds the configuration of every block of the app
(95 here: `get_config` with an `inspect.signature` per block), ~9.5 ms of CPU per new session, to keep a copy for
deep links. Corral shows no deep-link button; the copy is built here block by block when something reads it (an
output that gets a value, or a deep link asked for by hand, which still gets every block).
"""

from __future__ import annotations

from collections.abc import Iterator
from copy import copy
from typing import Any

import gradio as gr
from gradio import state_holder
from gradio.state_holder import SessionState


class _OnDemand(dict[int, Any]):
    """Block configurations computed the first time each is read."""

    def __init__(self, blocks_config: Any, ids: list[int]) -> None:
        super().__init__()
        self._blocks_config = blocks_config
        self.ids = ids

    def __missing__(self, key: int) -> Any:
        config = self._blocks_config.config_for_block(key, [], self._blocks_config.blocks[key])
        self[key] = config
        return config


class LightSessionState(SessionState):
    """`SessionState` with the per-block configurations made on demand; everything else as Gradio's."""

    def __init__(self, blocks: gr.Blocks) -> None:
        self.blocks_config = copy(blocks.default_config)
        self.config_values = _OnDemand(self.blocks_config, [k for k in self.blocks_config.blocks if k in blocks.blocks])
        self.state_data: dict[int, Any] = {}
        self._state_ttl: dict[int, Any] = {}
        self.is_closed = False
        self.STATE_TTL_WHEN_CLOSED = 3600  # Gradio's own, outside its end-to-end tests: an hour to come back

    @property
    def components(self) -> Iterator[dict[str, Any]]:
        """Every block's configuration, as Gradio's deep links read them."""
        values = self.config_values
        for key in values.ids if isinstance(values, _OnDemand) else list(values):
            if values[key]:
                yield values[key]


def use_light_sessions() -> None:
    """Make Gradio's session store create `LightSessionState`s (it looks the class up in its module at each new
    session; `tests/arena/ui/test_sessions.py` checks that it still does)."""
    state_holder.SessionState = LightSessionState  # type: ignore[misc]
