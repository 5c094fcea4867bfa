"""Settings: the environment's values, the command line over them, secrets kept out of reprs."""

from __future__ import annotations

import ast
from pathlib import Path

from app import parse_args
from arena.settings import DEFAULT_DATA_DIR, Settings
from tests.support.helpers import ROOT


def test_defaults_with_an_empty_environment() -> None:
    s = Settings.from_env({})
    assert (s.host, s.port, s.data_dir, s.database_url, s.admin_token) == (
        "127.0.0.1",
        7860,
        DEFAULT_DATA_DIR,
        None,
        None,
    )
    assert s.db_url == f"sqlite:///{DEFAULT_DATA_DIR.resolve() / 'corral.db'}"
    assert s.resolved_models_dir == DEFAULT_DATA_DIR.resolve() / "models"


def test_the_environment_then_the_command_line(tmp_path: Path) -> None:
    env = {
        "CORRAL_PORT": "9001",
        "CORRAL_DATA_DIR": str(tmp_path),
        "CORRAL_MODELS_DIR": "",  # empty: as if unset
        "CORRAL_IP_SALT": "pepper-0123456789abcdef",
        "CORRAL_ADMIN_TOKEN": "admin-secret",
        "MY_KEY": "k",
    }
    s = Settings.from_env(env)
    assert s.port == 9001 and s.data_dir == tmp_path and s.models_dir is None and s.env["MY_KEY"] == "k"
    assert s.db_url == f"sqlite:///{tmp_path.resolve() / 'corral.db'}"
    assert "pepper" not in repr(s) and "admin-secret" not in repr(s) and "MY_KEY" not in repr(s)
    args = parse_args(["--port", "9002"], s)
    assert args.port == 9002 and args.data_dir == tmp_path  # a flag wins; the rest keeps the environment's
    updated = s.updated(port=args.port, database_url=None)
    assert updated.port == 9002 and updated.database_url is None and updated.salt == s.salt


def test_only_the_entry_points_read_the_environment() -> None:
    """Settings are built by app.py and the `python -m` entry points; every other module receives them."""
    entry_points = {"arena/__main__.py", "backends/serve.py"}  # backends.serve: `python -m backends.serve`
    readers = []
    for package in ("arena", "backends", "prompts"):
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv"):
                    readers.append(str(path.relative_to(ROOT)))
    assert sorted(set(readers) - entry_points) == []
