"""The YAML configuration, validated by pydantic; `load_config` fails with one line naming file, key and problem."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from backends import kinds
from backends.base import GenerationParams
from backends.entries import ModelEntry, RemoteEntry, Source, Timeouts
from backends.local_kind import LocalModel
from backends.openai import OpenAIModel
from backends.tgi import TgiModel

# the entry classes stay importable from here; new kinds need not be added (they live in backends/kinds.py)
__all__ = ["LocalModel", "ModelEntry", "OpenAIModel", "RemoteEntry", "Source", "TgiModel", "Timeouts"]


class ConfigError(Exception):
    """The configuration cannot be used; the message is one line for the operator."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# One `models:` entry: the union of the kinds' entry classes (backends/kinds.py), told apart by `backend`.
if TYPE_CHECKING:
    ModelConfig = ModelEntry
else:
    ModelConfig = kinds.entry_union()


class TargetPair(_Strict):
    """A pair of models to draw more (or less) often."""

    models: tuple[str, str]
    factor: float = Field(gt=0)


class SamplingConfig(_Strict):
    """How battle pairs are drawn (all optional: the defaults work with no configuration)."""

    mode: Literal["weighted", "active"] = "weighted"
    boost_below: int = Field(default=30, ge=0)  # models with fewer battles than this are drawn more
    boost: float = Field(default=3.0, ge=1)
    target_pairs: list[TargetPair] = []
    active_strength: float = Field(default=4.0, ge=0)
    # which ratings active mode weighs pairs by: the leaderboard's (plain), or with answer style held equal
    ratings: Literal["plain", "style"] = "plain"


class LimitsConfig(_Strict):
    """Per-session and per-IP rate limits (0 switches one off)."""

    messages_per_minute: int = Field(default=20, ge=0)
    votes_per_hour: int = Field(default=120, ge=0)


class RetentionConfig(_Strict):
    """How long voter data is kept (`python -m arena prune`), and when an abandoned open battle is closed."""

    days: int | None = Field(default=None, ge=1)  # None: keep everything; `prune` needs --days then
    action: Literal["delete", "anonymise"] = "anonymise"
    close_idle_battles_after_minutes: int = Field(default=120, ge=1)  # open battles with no round for this long


DEFAULT_FEEDBACK_TAGS = ["wrong", "unhelpful", "wrong language", "harmful", "too long", "too short"]


class ArenaSettings(_Strict):
    """Limits and behaviour of the arena itself."""

    title: str = "Corral"
    notice: str | None = None  # a Markdown banner under the title (what these models are, how to bring your own)
    max_input_chars: int = Field(default=4000, ge=1)
    max_turns: int = Field(default=8, ge=1)
    concurrency_limit: int = Field(default=64, ge=1)
    self_play_rate: float = Field(default=0.1, ge=0, le=1)  # share of battles that are self-play, when enabled
    identity_words: list[str] | None = None  # None: arena.leaks.DEFAULT_IDENTITY_WORDS
    languages: list[str] | None = None  # None: arena.language's default set
    limits: LimitsConfig = LimitsConfig()
    sampling: SamplingConfig = SamplingConfig()
    feedback_tags: list[str] = DEFAULT_FEEDBACK_TAGS
    leaderboard_rounds: int = Field(default=1000, ge=10, le=10000)  # bootstrap rounds per page view
    # how the leaderboard's 95% intervals are taken: resampling the votes, or the analytic sandwich covariance
    leaderboard_intervals: Literal["bootstrap", "sandwich"] = "bootstrap"
    slight_preferences: bool = False  # also offer "A/B is slightly better" (3/4 of a win in ratings)
    rating_method: str = "bradley-terry"  # arena.rating_methods: the leaderboard's and active sampling's ratings
    retention: RetentionConfig = RetentionConfig()

    @field_validator("rating_method")
    @classmethod
    def _known_method(cls, value: str) -> str:
        from arena.rating_methods import RATING_METHODS

        if value not in RATING_METHODS:
            raise ValueError(f"unknown rating method '{value}' (known: {', '.join(RATING_METHODS)})")
        return value

    @model_validator(mode="after")
    def _intervals_the_method_has(self) -> ArenaSettings:
        if self.leaderboard_intervals == "sandwich" and self.rating_method == "elo":
            raise ValueError("leaderboard_intervals: sandwich needs a likelihood; the elo method has bootstrap only")
        return self


class JudgeConfig(_Strict):
    """An AI judge: a configured model asked, with a pairwise prompt, which of two answers is better."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    model: str  # a configured model's name: the judge speaks through its backend
    template: str = "pairwise"  # prompts/judges/NAME.{system,user}.jinja, or a path to such a pair's stem
    swap: bool = True  # read both orders and keep only verdicts that agree (else "inconsistent")
    generation: GenerationParams = GenerationParams(max_new_tokens=256, do_sample=False)
    timeout_s: float = Field(default=120.0, gt=0)  # per reading
    concurrency: int = Field(default=2, ge=1)  # readings at once
    per_minute: int = Field(default=0, ge=0)  # readings started per minute (0: no limit)
    family: list[str] = []  # contestants counted as the judge's own kin, for the self-preference check
    may_judge_contestants: bool = False  # whether it may judge a battle its own model fights in
    background: bool = False  # also judge each round a person voted on, after the vote (paired data)

    @field_validator("template")
    @classmethod
    def _template_exists(cls, value: str) -> str:
        from arena.judging import load_template

        load_template(value)  # a missing pair of files fails here, naming them
        return value


class AppConfig(_Strict):
    """The whole configuration file."""

    @model_validator(mode="before")
    @classmethod
    def _default_backend(cls, data: Any) -> Any:
        """`backend` may be left out and means `local`."""
        if isinstance(data, dict) and isinstance(data.get("models"), list):
            data = {**data, "models": [_with_backend(m) for m in data["models"]]}
        return data

    demo: bool = False
    arena: ArenaSettings = ArenaSettings()
    models: list[ModelConfig] = Field(min_length=1)
    judges: list[JudgeConfig] = []

    @model_validator(mode="after")
    def _unique_names(self) -> AppConfig:
        seen: set[str] = set()
        for m in self.models:
            if m.name in seen:
                raise ValueError(f"model name '{m.name}' is used twice")
            seen.add(m.name)
        judges: set[str] = set()
        for judge in self.judges:
            if judge.name in judges:
                raise ValueError(f"judge name '{judge.name}' is used twice")
            judges.add(judge.name)
            for name in (judge.model, *judge.family):
                if name not in seen:
                    raise ValueError(f"judge '{judge.name}' names '{name}', which is not a configured model")
        for pair in self.arena.sampling.target_pairs:
            for name in pair.models:
                if name not in seen:
                    raise ValueError(f"arena.sampling.target_pairs names '{name}', which is not a configured model")
        return self

    def model(self, name: str) -> ModelEntry:
        """The model entry called `name`."""
        return next(m for m in self.models if m.name == name)

    def judge(self, name: str) -> JudgeConfig:
        """The judge called `name`; a ConfigError naming the configured ones otherwise."""
        for judge in self.judges:
            if judge.name == name:
                return judge
        known = ", ".join(j.name for j in self.judges) or "none"
        raise ConfigError(f"there is no judge '{name}' in the config (judges: {known})")


def _with_backend(model: Any) -> Any:
    return {"backend": kinds.DEFAULT_KIND, **model} if isinstance(model, dict) else model


_VAR = re.compile(r"\$\{([a-z_]+)\}")


def _expand(value: Any, variables: dict[str, str], where: Path) -> Any:
    """Replace ${name} in every string of the parsed YAML."""
    if isinstance(value, dict):
        return {k: _expand(v, variables, where) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, variables, where) for v in value]
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            if m.group(1) not in variables:
                raise ConfigError(f"{where}: unknown variable ${{{m.group(1)}}} (known: {', '.join(variables)})")
            return variables[m.group(1)]

        return _VAR.sub(sub, value)
    return value


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for i, part in enumerate(loc):
        if part in kinds.KINDS and i > 0 and isinstance(loc[i - 1], int):
            continue  # pydantic's union tag, not a key the user wrote
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def parse_config(data: Any, *, source: Path, variables: dict[str, str] | None = None) -> AppConfig:
    """Validate parsed YAML; relative local paths are resolved against the file's folder."""
    data = _expand(data if data is not None else {}, variables or {}, source)
    try:
        config = AppConfig.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"{_location(err['loc'])}: {'unknown key' if err['type'] == 'extra_forbidden' else err['msg']}"
            for err in exc.errors()
        ]
        raise ConfigError(f"{source}: {'; '.join(problems)}") from None
    return _resolve_paths(config, source.parent)


def _resolve_paths(config: AppConfig, folder: Path) -> AppConfig:
    models: list[ModelEntry] = []
    problems: list[str] = []
    for i, m in enumerate(config.models):
        resolved, found = m.with_paths_resolved(folder, f"models[{i}]")
        models.append(resolved)
        problems += found
    if problems:
        raise ConfigError("; ".join(problems))
    return config.model_copy(update={"models": models})


def load_config(path: Path, *, variables: dict[str, str] | None = None) -> AppConfig:
    """Read and validate a YAML config file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror}).") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{where}.") from None
    try:
        return parse_config(data, source=path, variables=variables)
    except ConfigError as exc:
        message = str(exc)
        raise ConfigError(message if message.startswith(str(path)) else f"{path}: {message}") from None
