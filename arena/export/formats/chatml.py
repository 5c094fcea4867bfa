"""Supervised fine-tuning chats, `jsonl-chatml`: the chosen answer of each decisive vote, in TRL's messages form. Pure.

Each row is `{"messages": [{"role": "user", …}, {"role": "assistant", …}, …]}`, the conversational language
modelling format TRL's `SFTTrainer` takes: the winning side's conversation up to and including the judged answer
(in a multi-turn battle, the history that answer continued). Ties, both-bad votes and wins over an empty answer
are skipped as in the pairwise formats; identical chats are written once.
"""

from __future__ import annotations

from arena.export.formats.base import (
    JUDGED_ROUNDS,
    ExportFormat,
    Reading,
    Shaped,
    Shaping,
    preference_pair,
    row_model,
    vote_metadata,
    voted_at,
)
from arena.store.export_source import JudgedRound


def chatml(vote: JudgedRound, shaping: Shaping) -> Shaped:
    """One chat for a decisive vote: the winner's conversation, its judged answer last."""
    pair = preference_pair(vote)
    if isinstance(pair, str):
        return Shaped([], pair)
    row = {"messages": pair.won, "model": pair.winner, **vote_metadata(vote, shaping.judges)}
    return Shaped([row])


CHATML = ExportFormat(
    name="jsonl-chatml",
    explain="chats for supervised fine-tuning: the chosen answer of each decisive vote with its conversation, "
    "as `messages` (ties and both-bad votes are skipped)",
    trainer="TRL `SFTTrainer` (conversational language modelling on the answers voters chose)",
    reads=(Reading(JUDGED_ROUNDS, chatml),),
    models=row_model,
    moment=voted_at,
    dedup=("messages",),
    schema=None,
)
