"""The backend-kind table: the single place a kind is declared; the config and the wiring only read it."""

from __future__ import annotations

from pathlib import Path

import pytest

from arena.config import ConfigError, parse_config
from arena.wiring import build_backends
from backends import kinds
from backends.entries import ModelEntry


def test_each_kind_is_named_by_its_entry_tag() -> None:
    assert list(kinds.KINDS) == ["local", "tgi", "openai", "vllm"]
    for name, kind in kinds.KINDS.items():
        assert issubclass(kind.entry, ModelEntry) and kind.name == name
    with pytest.raises(KeyError, match=r"unknown backend kind 'pigeon' \(known: local, tgi, openai, vllm\)"):
        kinds.kind("pigeon")


def test_an_unknown_backend_names_the_known_kinds() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"models": [{"name": "m", "backend": "pigeon"}]}, source=Path("c.yaml"))
    assert str(err.value) == (
        "c.yaml: models[0]: Input tag 'pigeon' found using 'backend' does not match any of the expected tags: "
        "'local', 'tgi', 'openai', 'vllm'"
    )


def test_the_kind_tag_never_shows_in_an_error_location() -> None:
    models = [{"name": "t", "backend": "tgi", "endpoints": ["ftp://x"], "template": "chatml"}]
    with pytest.raises(ConfigError, match=r"^c\.yaml: models\[0\]\.endpoints: Value error, 'ftp://x' is not an"):
        parse_config({"models": models}, source=Path("c.yaml"))


def test_a_missing_api_key_is_a_config_error() -> None:
    entry = {"name": "o", "backend": "openai", "endpoints": ["http://127.0.0.1:9"], "model": "m"}
    config = parse_config({"models": [{**entry, "api_key_env": "CORRAL_TEST_KEY"}]}, source=Path("c.yaml"))
    with pytest.raises(ConfigError, match=r"^model 'o': environment variable CORRAL_TEST_KEY .* is not set$"):
        build_backends(config, {})
    wired = build_backends(config, {"CORRAL_TEST_KEY": "sk-1"})
    wired.close()
    assert list(wired.backends) == ["o"]
