"""`python -m arena`: the vote-filter flags both reports share, and what each sub-command imports (no timings).

Each import check runs the command in a fresh interpreter and reads its `sys.modules` at exit: a module there was
paid for at start-up. Heavy libraries a sub-command does not use must not be among them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from arena.__main__ import SUBCOMMANDS, parser
from arena.domain import Outcome, Side, VoteFilter, Voter
from arena.settings import Settings
from arena.store.engine import make_engine
from arena.store.repository import Repository
from arena.vote_filter_cli import vote_filter
from tests.arena.store.test_repository import ok
from tests.support.battles import store_round

ROOT = Path(__file__).resolve().parents[2]
# what no command-line tool needs: the web UI, the models, configuration validation, schema migration
NEVER = ("gradio", "torch", "transformers", "alembic", "pydantic", "arena.config", "backends.base", "jinja2")
EXPORTS = ("arena.export.formats", "arena.export.run", "arena.store.export_source")  # the export's own code
MODULES = """
import contextlib, io, json, runpy, sys
sys.argv = ["arena", *sys.argv[1:]]
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    try:
        runpy.run_module("arena", run_name="__main__", alter_sys=True)
    except SystemExit as exit_:
        code = exit_.code
with open(OUT, "w") as out:
    json.dump({"code": code, "modules": sorted(sys.modules)}, out)
"""


def imported(tmp_path: Path, *args: str) -> set[str]:
    """The modules `python -m arena <args>` has imported when it exits (it must exit 0)."""
    out = tmp_path / "modules.json"
    script = MODULES.replace("OUT", repr(str(out)))
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_DISABLE_TELEMETRY": "1"}
    done = subprocess.run(
        [sys.executable, "-c", script, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert result["code"] == 0, result
    return set(result["modules"])


def heavy(modules: set[str], *extra: str) -> list[str]:
    """The modules of NEVER (and `extra`) among `modules`, packages with their submodules."""
    banned = (*NEVER, *extra)
    return sorted(m for m in modules if any(m == b or m.startswith(f"{b}.") for b in banned))


@pytest.mark.parametrize(
    ("command", "extra"),
    [
        ("leaderboard", (*EXPORTS, "sqlalchemy")),  # argument parsing needs the rating methods only
        ("export", ("numpy", "arena.leaderboard")),  # the format registry, not the ratings
        ("audit", ("numpy", "sqlalchemy", "arena.leaderboard", *EXPORTS)),
        ("prune", ("numpy", "sqlalchemy", *EXPORTS)),
        ("backup", ("numpy", "sqlalchemy", *EXPORTS)),
        ("autobattle", ("numpy", "sqlalchemy", "torch", *EXPORTS)),  # the backends load only when it runs
    ],
)
def test_help_imports_only_what_the_sub_command_uses(tmp_path: Path, command: str, extra: tuple[str, ...]) -> None:
    assert heavy(imported(tmp_path, command, "--help"), *extra) == []


def test_a_leaderboard_on_a_current_database_imports_no_migration_or_export_code(
    sqlite_url: str, tmp_path: Path
) -> None:
    repo = Repository(make_engine(sqlite_url))
    repo.create_battle(battle_id="c" * 32, models={Side.A: "m1", Side.B: "m2"}, voter=Voter("s"))
    store_round(repo, "c" * 32, (ok("a"), ok("b")))
    repo.record_vote(battle_id="c" * 32, turn_index=0, outcome=Outcome.A, anonymous=True, voter=Voter("s"))
    repo.engine.dispose()
    modules = imported(tmp_path, "leaderboard", "--db", sqlite_url, "--rounds", "20", "--format", "json")
    assert "arena.leaderboard" in modules and "numpy" in modules  # the check does see the report run
    assert heavy(modules, *EXPORTS, "lingua") == []


def test_leaderboard_and_export_take_the_same_vote_filter_flags(capsys: pytest.CaptureFixture[str]) -> None:
    def flags(command: str) -> set[str]:
        with pytest.raises(SystemExit):
            parser(Settings()).parse_args([command, "--help"])
        return {word.strip("[],") for word in capsys.readouterr().out.split() if word.startswith(("--", "[--"))}

    shared = {
        "--since",
        "--until",
        "--model",
        "--language",
        "--include-named",
        "--include-leaks",
        "--include-self-play",
    }
    assert shared <= flags("leaderboard") and shared <= flags("export")
    assert "--min-turns" in flags("export") and "--min-turns" not in flags("leaderboard")


@pytest.mark.parametrize("command", ["leaderboard", "export"])
def test_the_flags_build_one_vote_filter(command: str, tmp_path: Path) -> None:
    rest = ["--format", "dpo", "--out", str(tmp_path / "x.jsonl")] if command == "export" else []
    flags = ["--language", "fr", "--language", "English", "--model", "a", "--model", "b", "--since", "2026-03-01"]
    flags += ["--until", "2026-04-01", "--include-named", "--include-leaks", "--include-self-play"]
    args = parser(Settings(), commands=[command]).parse_args([command, *rest, *flags])
    assert vote_filter(args) == VoteFilter(
        since=date(2026, 3, 1),
        until=date(2026, 4, 1),
        models=("a", "b"),
        languages=("French", "English"),
        include_named=True,
        include_leaks=True,
        include_self_play=True,
    )
    plain = parser(Settings(), commands=[command]).parse_args([command, *rest])
    assert vote_filter(plain) == VoteFilter()  # by default: the leaderboard's votes (no named, leaks, self-play)


def test_only_the_named_sub_command_gets_its_arguments() -> None:
    p = parser(Settings(), commands=["prune"])
    assert p.parse_args(["prune", "--days", "3"]).days == 3
    with pytest.raises(SystemExit):
        p.parse_args(["leaderboard", "--rounds", "3"])  # not built: the caller named another sub-command
    assert set(SUBCOMMANDS) == {"leaderboard", "audit", "judges", "export", "autobattle", "prune", "backup"}
