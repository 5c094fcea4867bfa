"""Config validation: good files load; bad ones fail with one line naming the file, key and problem."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from arena.config import ConfigError, LocalModel, load_config
from backends.demo import DemoModels
from tests.support.helpers import ROOT, config_data


def write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "corral.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data, encoding="utf-8")
    return path


def test_demo_config_loads_with_data_dir_variable(demo_models: DemoModels) -> None:
    data_dir = demo_models.base.parents[1]
    config = load_config(ROOT / "configs" / "demo.yaml", variables={"data_dir": str(data_dir)})
    assert config.demo is True
    assert [m.name for m in config.models] == ["demo-base", "demo-lora-a", "demo-lora-b"]
    lora = config.model("demo-lora-a")
    assert isinstance(lora, LocalModel) and lora.adapter == str(demo_models.adapters["lora-a"])


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path, demo_models: DemoModels) -> None:
    data = config_data(demo_models)
    (tmp_path / "m").symlink_to(demo_models.base)
    data["models"][0]["model"] = "./m"
    config = load_config(write(tmp_path, data))
    first = config.models[0]
    assert isinstance(first, LocalModel) and first.model == str((tmp_path / "m").resolve())


def test_unknown_key_names_file_key_and_problem(tmp_path: Path, demo_models: DemoModels) -> None:
    data = config_data(demo_models)
    data["models"][1]["adapterr"] = "x"
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == f"{path}: models[1].adapterr: unknown key"


def test_bad_value_is_named(tmp_path: Path, demo_models: DemoModels) -> None:
    data = config_data(demo_models)
    data["models"][0]["generation"]["top_p"] = 1.0
    with pytest.raises(ConfigError, match=r"models\[0\]\.generation\.top_p: Input should be less than 1"):
        load_config(write(tmp_path, data))


def test_missing_model_folder_is_refused(tmp_path: Path, demo_models: DemoModels) -> None:
    data = config_data(demo_models)
    data["models"][2]["adapter"] = "./nowhere/lora"
    with pytest.raises(ConfigError, match=r"models\[2\]\.adapter: './nowhere/lora' does not exist"):
        load_config(write(tmp_path, data))


def test_every_problem_is_listed_on_one_line(tmp_path: Path, demo_models: DemoModels) -> None:
    data = config_data(demo_models)
    data["models"][0]["temprature"] = 0.5
    data["models"][1]["weight"] = 0
    data["models"][2]["generation"]["top_p"] = 2
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, data))
    message = str(err.value)
    assert "\n" not in message and "more problems" not in message
    for needle in ("models[0].temprature: unknown key", "models[1].weight:", "models[2].generation.top_p:"):
        assert needle in message
    data = config_data(demo_models)
    data["models"][1]["adapter"] = "./nowhere/a"
    data["models"][2]["adapter"] = "./nowhere/b"
    with pytest.raises(ConfigError, match=r"models\[1\]\.adapter: .*; models\[2\]\.adapter: './nowhere/b' does not"):
        load_config(write(tmp_path, data))


def test_a_recipe_entry_may_point_at_an_adapter_still_to_build(tmp_path: Path, demo_models: DemoModels) -> None:
    data = config_data(demo_models)
    data["models"][1].update(adapter="./variants/terse", recipe="terse")
    config = load_config(write(tmp_path, data))
    model = config.models[1]
    assert isinstance(model, LocalModel) and model.adapter == str(tmp_path / "variants" / "terse")
    data["models"][1].update(recipe="sarcastic")
    with pytest.raises(ConfigError, match="unknown variant recipe 'sarcastic'"):
        load_config(write(tmp_path, data))
    data["models"][1].pop("adapter")
    data["models"][1].update(recipe="terse")
    with pytest.raises(ConfigError, match="needs `adapter`"):
        load_config(write(tmp_path, data))


def test_the_default_config_loads_before_its_variants_exist(tmp_path: Path) -> None:
    (tmp_path / "smollm2-135m-instruct").mkdir()  # converted by app.py before the config is read
    config = load_config(ROOT / "configs" / "default.yaml", variables={"data_dir": "x", "models_dir": str(tmp_path)})
    names = [m.name for m in config.models]
    assert len(names) >= 3 and config.arena.notice and "SmolLM2" in config.arena.notice
    recipes = [getattr(m, "recipe", None) for m in config.models]
    assert sorted(r for r in recipes if r) == ["enthusiastic", "formal", "terse"]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["models"].append(dict(d["models"][0])), "model name 'demo-base' is used twice"),
        (lambda d: d["models"][0].update(template="nope"), "unknown prompt template 'nope'"),
        (
            lambda d: d["models"][0].update(backend="carrier-pigeon"),
            "models[0]: Input tag 'carrier-pigeon' found using 'backend' does not match any of the expected tags",
        ),
        (lambda d: d["models"][0].update(weight=0), "models[0].weight: Input should be greater than 0"),
        (lambda d: d.update(models=[]), "models: List should have at least 1 item"),
        (
            lambda d: d.setdefault("arena", {}).update(rating_method="elo", leaderboard_intervals="sandwich"),
            "leaderboard_intervals: sandwich needs a likelihood; the elo method has bootstrap only",
        ),
        (
            lambda d: d.setdefault("arena", {}).update(leaderboard_intervals="jackknife"),
            "arena.leaderboard_intervals: Input should be 'bootstrap' or 'sandwich'",
        ),
    ],
)
def test_semantic_errors(tmp_path: Path, demo_models: DemoModels, mutate: Any, message: str) -> None:
    data = config_data(demo_models)
    mutate(data)
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, data))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_unreadable_and_invalid_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_config(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match=r"not valid YAML at line [23]"):
        load_config(write(tmp_path, "models:\n  - name: [unclosed\n"))


def test_unknown_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown variable \$\{home_dir\}"):
        load_config(
            write(tmp_path, {"models": [{"name": "x", "model": "${home_dir}/m"}]}), variables={"data_dir": "/d"}
        )


def test_loading_a_config_does_not_import_torch(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(
        textwrap.dedent(
            """
            models:
              - {name: l, model: some-org/some-model}
              - {name: t, backend: tgi, endpoints: ["http://127.0.0.1:9"], template: chatml}
              - {name: o, backend: openai, endpoints: ["http://127.0.0.1:9"], model: m}
              - {name: v, backend: vllm, endpoints: ["http://127.0.0.1:9"], model: m}
            """
        ),
        encoding="utf-8",
    )
    script = (
        "import sys; from pathlib import Path; import arena.config as c\n"
        f"config = c.load_config(Path({str(tmp_path / 'c.yaml')!r}))\n"
        "print(len(config.models), [m for m in ('torch', 'transformers', 'peft') if m in sys.modules])\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "4 []"
