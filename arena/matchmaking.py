"""Deciding the next battle: which two models, in which mode, with which sampling parameters per side."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass

import numpy as np

from arena.config import AppConfig
from arena.domain import BattleMode, Outcome, Side
from arena.rating_methods import BradleyTerry, RatingMethod
from arena.ratings import outcome_counts, to_ratings
from arena.sampling import SamplingSettings, choose_pair
from backends.base import GenerationParams

# Votes as the repository aggregates them: (model_a, model_b, outcome, count).
PairOutcomes = list[tuple[str, str, Outcome, int]]
STATS_SECONDS = 30.0  # how long vote statistics are reused before the next aggregate query
SELF_PLAY_TEMPERATURE_STEP = 0.3


@dataclass(frozen=True)
class Matchup:
    """Who meets whom, how, and with which parameters on each side."""

    models: dict[Side, str]
    mode: BattleMode
    params: dict[Side, GenerationParams]


class Matchmaker:
    """Draws battles: self-play now and then for models that allow it, else a pair from arena.sampling."""

    def __init__(
        self,
        config: AppConfig,
        rng: random.Random,
        stats: Callable[[], PairOutcomes],
        *,
        clock: Callable[[], float] = time.monotonic,
        method: RatingMethod | None = None,
        style_ratings: Callable[[], dict[str, float]] | None = None,
    ) -> None:
        self._config = config
        self._method = method or BradleyTerry()
        # with `sampling.ratings: style`, active mode weighs pairs by these (read once per refresh, like the votes)
        self._style_ratings = style_ratings if config.arena.sampling.ratings == "style" else None
        self._rng = rng
        self._stats = stats
        self._clock = clock
        self._cached: tuple[float, PairOutcomes] | None = None
        self._cached_ratings: dict[str, float] | None = None  # fitted from the cached votes, once per refresh
        s = config.arena.sampling
        self._settings = SamplingSettings(
            mode=s.mode,
            boost_below=s.boost_below,
            boost=s.boost,
            target_pairs=tuple((p.models[0], p.models[1], p.factor) for p in s.target_pairs),
            active_strength=s.active_strength,
        )

    def next(self, available: Collection[str]) -> Matchup:
        """The next anonymous battle among the available models."""
        models = [m for m in self._config.models if m.name in available]
        self_players = [m for m in models if m.self_play]
        if self_players and self._rng.random() < self._config.arena.self_play_rate:
            chosen = self._rng.choices(self_players, weights=[m.weight for m in self_players])[0]
            return self.same_model(chosen.name, BattleMode.SELF_PLAY)
        return self.pair(available)

    def pair(
        self, available: Collection[str], mode: BattleMode = BattleMode.ANONYMOUS, rng: random.Random | None = None
    ) -> Matchup:
        """Two different models among the available ones, by the arena's sampler (never self-play); `rng` draws
        instead of the matchmaker's own (a plan whose every item has its own seed)."""
        models = [m for m in self._config.models if m.name in available]
        weights = {m.name: m.weight for m in models}
        votes = self._votes()
        battles: Counter[str] = Counter()
        pairs: Counter[frozenset[str]] = Counter()
        for a, b, _, n in votes:
            battles[a] += n
            battles[b] += n
            pairs[frozenset((a, b))] += n
        ratings = None
        if self._settings.mode == "active" and votes:
            ratings = self._ratings(votes)
        a, b = choose_pair(
            weights, rng or self._rng, settings=self._settings, battles=battles, pair_battles=pairs, ratings=ratings
        )
        return Matchup({Side.A: a, Side.B: b}, mode, {s: self._params(m) for s, m in ((Side.A, a), (Side.B, b))})

    def named(self, a: str, b: str) -> Matchup:
        """A battle the user chose; one model twice gets two different samples, as in self-play."""
        if a == b:
            return self.same_model(a, BattleMode.NAMED)
        return Matchup({Side.A: a, Side.B: b}, BattleMode.NAMED, {Side.A: self._params(a), Side.B: self._params(b)})

    def same_model(self, name: str, mode: BattleMode) -> Matchup:
        """One model on both sides with different seeds and temperatures, so the two answers differ."""
        base = self._params(name)
        seed_a, seed_b = self._rng.sample(range(1, 2**31), 2)
        hotter = min(base.temperature + SELF_PLAY_TEMPERATURE_STEP, 2.0)
        params = {
            Side.A: base.model_copy(update={"seed": seed_a}),
            # a greedy model (temperature 0) samples on the hotter side, or both answers would be the same
            Side.B: base.model_copy(update={"seed": seed_b, "temperature": hotter, "do_sample": True}),
        }
        if self._rng.random() < 0.5:  # the hotter sample may be on either side
            params = {Side.A: params[Side.B], Side.B: params[Side.A]}
        return Matchup({Side.A: name, Side.B: name}, mode, params)

    def _ratings(self, votes: PairOutcomes) -> dict[str, float]:
        """Ratings of every configured model by the arena's rating method, fitted once per vote refresh (not per
        battle drawn: a method such as Elo replays every vote); a fixed seed, so drawing pairs leaves the rng be."""
        if self._cached_ratings is None:
            counts = outcome_counts(votes)
            names = sorted({m for pair in counts for m in pair} | {m.name for m in self._config.models})
            theta = self._method.fit(counts, names, np.random.default_rng(0))
            self._cached_ratings = dict(zip(names, to_ratings(theta).tolist(), strict=True))
            if self._style_ratings is not None:
                self._cached_ratings.update(_on_scale_of(self._style_ratings(), self._cached_ratings))
        return self._cached_ratings

    def _params(self, name: str) -> GenerationParams:
        return self._config.model(name).generation

    def _votes(self) -> PairOutcomes:
        now = self._clock()
        if self._cached is None or now - self._cached[0] > STATS_SECONDS:
            self._cached, self._cached_ratings = (now, self._stats()), None
        return self._cached[1]


def _on_scale_of(ratings: dict[str, float], reference: dict[str, float]) -> dict[str, float]:
    """`ratings` shifted so that their models average what they average in `reference`: the style-controlled
    ratings are centred over the models with styled votes, the plain ones over every model, and a model without
    styled votes keeps its plain rating beside them."""
    shared = [m for m in ratings if m in reference]
    if not shared:
        return ratings
    shift = sum(reference[m] - ratings[m] for m in shared) / len(shared)
    return {m: r + shift for m, r in ratings.items()}
