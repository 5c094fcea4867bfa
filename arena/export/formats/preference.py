"""TRL's paired preference formats: `dpo` (explicit prompt) and `reward` (implicit prompt, optional margin). Pure.

Multi-turn battles: the two sides' histories differ after the first round (each model saw its own earlier
answers). A DPO `prompt` is the history that the chosen answer continued; `reward` rows give each answer its own
history.
"""

from __future__ import annotations

from typing import Any

from arena.export.formats.base import (
    JUDGED_ROUNDS,
    ExportFormat,
    Reading,
    Row,
    Shaped,
    Shaping,
    conversation_type,
    metadata_columns,
    pair_models,
    preference_pair,
    vote_metadata,
    voted_at,
)
from arena.store.export_source import JudgedRound

PAIR_FIELDS = ("model_chosen", "model_rejected", "battle_id")


def dpo(vote: JudgedRound, shaping: Shaping) -> Shaped:
    """Explicit-prompt conversational preference: history as `prompt`, the two answers as `chosen`/`rejected`."""
    pair = preference_pair(vote)
    if isinstance(pair, str):
        return Shaped([], pair)
    row = {
        "prompt": pair.won[:-1],
        "chosen": pair.won[-1:],
        "rejected": pair.lost[-1:],
        "model_chosen": pair.winner,
        "model_rejected": pair.loser,
        **vote_metadata(vote, shaping.judges),
    }
    return Shaped([row])


def reward(vote: JudgedRound, shaping: Shaping) -> Shaped:
    """Implicit-prompt preference: whole conversations; with strengths, a margin column.

    The margin is how much more likely the winning model is to win than the loser, in natural-log odds from the
    leaderboard's Bradley–Terry fit, floored at 0: an upset carries no extra margin.
    """
    pair = preference_pair(vote)
    if isinstance(pair, str):
        return Shaped([], pair)
    row: Row = {"chosen": pair.won, "rejected": pair.lost}
    if (strengths := shaping.strengths) is not None:
        row["margin"] = round(max(0.0, strengths.get(pair.winner, 0.0) - strengths.get(pair.loser, 0.0)), 4)
    row |= {"model_chosen": pair.winner, "model_rejected": pair.loser, **vote_metadata(vote, shaping.judges)}
    return Shaped([row])


def _pair_columns() -> list[tuple[str, Any]]:
    import pyarrow as pa

    return [(name, pa.string()) for name in PAIR_FIELDS] + metadata_columns()


def dpo_schema(_shaping: Shaping) -> Any:
    """The `dpo` Parquet schema."""
    import pyarrow as pa

    msgs = conversation_type()
    return pa.schema([("prompt", msgs), ("chosen", msgs), ("rejected", msgs), *_pair_columns()])


def reward_schema(shaping: Shaping) -> Any:
    """The `reward` Parquet schema (with a margin column when strengths are given)."""
    import pyarrow as pa

    msgs = conversation_type()
    margin = [("margin", pa.float64())] if shaping.strengths is not None else []
    return pa.schema([("chosen", msgs), ("rejected", msgs), *margin, *_pair_columns()])


DPO = ExportFormat(
    name="dpo",
    explain="preference pairs: the conversation as `prompt`, the two answers as `chosen` / `rejected` "
    "(ties and both-bad votes are not pairs)",
    trainer="TRL `DPOTrainer` (conversational preference with an explicit prompt)",
    reads=(Reading(JUDGED_ROUNDS, dpo),),
    models=pair_models,
    moment=voted_at,
    dedup=("prompt", "chosen", "rejected"),
    schema=dpo_schema,
)

REWARD = ExportFormat(
    name="reward",
    explain="preference pairs of whole conversations, `chosen` / `rejected` (ties and both-bad votes are not "
    "pairs), with an optional margin from the ratings",
    trainer="TRL `RewardTrainer` (conversational preference with an implicit prompt)",
    reads=(Reading(JUDGED_ROUNDS, reward),),
    models=pair_models,
    moment=voted_at,
    dedup=("chosen", "rejected"),
    schema=reward_schema,
    margin=True,
)
