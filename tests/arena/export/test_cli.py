"""`python -m arena export` as a real process: files, the summary on stderr, and one-sentence refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from arena.__main__ import main
from tests.arena.export.conftest import History

ROOT = Path(__file__).resolve().parents[3]


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {**os.environ, "CORRAL_IP_SALT": "cli-test-salt-0123456789"}
    base.pop("HF_TOKEN", None)
    return subprocess.run(
        [sys.executable, "-m", "arena", "export", *args],
        cwd=ROOT,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_export_writes_the_file_and_summarises_on_stderr(history: History, db_url: str, tmp_path: Path) -> None:
    out = tmp_path / "dpo.jsonl"
    done = cli("--format", "dpo", "--out", str(out), "--db", db_url)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 4, done.stderr
    assert f"Wrote 4 dpo rows to {out}" in done.stderr
    assert "1 tie skipped (not a preference)." in done.stderr
    assert "1 both-bad vote skipped (not a preference)." in done.stderr
    assert "1 duplicate row skipped." in done.stderr
    assert "1 vote left out: cast with the names visible (add --include-named)." in done.stderr
    assert "1 vote left out: a model played itself (add --include-self-play)." in done.stderr
    assert done.stdout == ""


def test_export_filters_from_the_command_line(history: History, db_url: str, tmp_path: Path) -> None:
    out = tmp_path / "zh.parquet"
    done = cli("--format", "lmsys", "--out", str(out), "--db", db_url, "--language", "zh", "--model", "belle-7b",
               "--model", "alpaca-zh", "--since", "2026-03-01")  # fmt: skip
    assert done.returncode == 0, done.stderr
    import pyarrow.parquet as pq

    [row] = pq.read_table(out).to_pylist()
    assert (row["model_a"], row["language"]) == ("belle-7b", "Chinese")


def test_reward_margin_column(history: History, db_url: str, tmp_path: Path) -> None:
    out = tmp_path / "reward.jsonl"
    done = cli("--format", "reward", "--out", str(out), "--db", db_url, "--margin")
    assert done.returncode == 0, done.stderr
    assert all("margin" in json.loads(line) for line in out.read_text(encoding="utf-8").splitlines())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "dpo", "--margin"], "--margin only applies to --format reward."),
        (["--format", "dpo", "--private"], "--private only applies with --push-to-hub."),
        (["--format", "dpo", "--push-to-hub", "team/votes"], "needs a Hugging Face token in the HF_TOKEN"),
        (["--format", "dpo", "--min-turns", "0"], "--min-turns must be 1 or more."),
        (["--format", "raw", "--out-suffix", ".parquet"], "The raw format is written as JSON Lines only"),
        (["--format", "dpo", "--out-suffix", ".csv"], "name it .jsonl or .parquet."),
        (["--format", "dpo", "--config", "/nonexistent.yaml"], "There is no config file at /nonexistent.yaml."),
    ],
)
def test_bad_requests_exit_2_with_one_sentence(
    sqlite_url: str, tmp_path: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    suffix = ".jsonl"
    if "--out-suffix" in args:
        suffix = args[args.index("--out-suffix") + 1]
        args = args[: args.index("--out-suffix")]
    code = main(["export", *args, "--out", str(tmp_path / f"out{suffix}"), "--db", sqlite_url, "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert err.count("\n") == 1 and err.startswith("arena export: ")
    assert not list(tmp_path.glob("out*"))


def test_a_missing_database_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "none.db"
    assert main(["export", "--format", "dpo", "--out", str(tmp_path / "x.jsonl"), "--db", f"sqlite:///{missing}"]) == 2
    assert capsys.readouterr().err == f"arena export: There is no database at {missing} (give --db or DATABASE_URL).\n"
    assert not missing.exists()


def test_an_unknown_language_code_is_an_argument_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["export", "--format", "dpo", "--out", str(tmp_path / "x.jsonl"), "--language", "qq"])
    assert exit_.value.code == 2 and "unknown language code 'qq'" in capsys.readouterr().err


def test_self_play_is_left_out_unless_asked_for(history: History, db_url: str, tmp_path: Path) -> None:
    def battles(*flags: str) -> list[tuple[str, str]]:
        out = tmp_path / f"lmsys{len(flags)}.jsonl"
        assert main(["export", "--format", "lmsys", "--out", str(out), "--db", db_url, "--quiet", *flags]) == 0
        return [
            (row["model_a"], row["model_b"]) for row in map(json.loads, out.read_text(encoding="utf-8").splitlines())
        ]

    assert ("vigogne-7b", "vigogne-7b") not in battles()
    assert ("vigogne-7b", "vigogne-7b") in battles("--include-self-play")
