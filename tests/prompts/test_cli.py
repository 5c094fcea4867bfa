"""`python -m prompts` run as a real subprocess from the repository root."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import prompts
from tests.support.helpers import ROOT


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m prompts ARGS` and capture its text output."""
    return subprocess.run(
        [sys.executable, "-m", "prompts", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
    )


def write_json(path: Path, data: object) -> Path:
    """Write `data` as JSON to `path`."""
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def assert_one_line_error(result: subprocess.CompletedProcess[str], text: str) -> None:
    """Exit 2, nothing on stdout, and a single sentence (no traceback) on stderr."""
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert text in result.stderr


def test_list() -> None:
    result = run("list")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split("\t")[0] for line in lines] == prompts.names()
    assert lines[0] == f"tokenizer\t{prompts.TOKENIZER_DESCRIPTION}"
    assert f"belle\t{prompts.get('belle').description}" in lines


def test_show() -> None:
    result = run("show", "vigogne_chat_v2")
    assert result.returncode == 0, result.stderr
    assert 'stop: ["</s>", "<|user|>"]\n' in result.stdout
    assert 'default system: "Vous êtes Vigogne, un assistant IA créé par Zaion Lab.' in result.stdout
    assert result.stdout.endswith("source:\n" + prompts.get("vigogne_chat_v2").source)


def test_render_prints_the_exact_prompt(tmp_path: Path) -> None:
    messages = write_json(tmp_path / "m.json", [{"role": "user", "content": "안녕하세요, 자기소개를 해 주세요."}])
    result = run("render", "belle", "--messages", str(messages))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Human: 안녕하세요, 자기소개를 해 주세요.\n\nAssistant:"


def test_render_refusal_is_one_line_and_exit_2(tmp_path: Path) -> None:
    messages = write_json(tmp_path / "m.json", [{"role": "system", "content": "x"}, {"role": "user", "content": "y"}])
    assert_one_line_error(run("render", "belle", "--messages", str(messages)), "The belle format has no system message")


def test_render_bad_json_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('[{"role": "user", ', encoding="utf-8")
    assert_one_line_error(run("render", "alpaca", "--messages", str(bad)), "is not valid JSON")
    not_messages = write_json(tmp_path / "m.json", [{"role": "user"}])
    assert_one_line_error(run("render", "alpaca", "--messages", str(not_messages)), "Message 0 in ")
    assert_one_line_error(run("render", "alpaca", "--messages", str(tmp_path / "missing.json")), "Cannot read ")


def test_unknown_format_is_one_line_and_exit_2(tmp_path: Path) -> None:
    assert_one_line_error(run("show", "nope"), "Unknown prompt format 'nope'.")
    assert_one_line_error(run("export", "tokenizer", "--out", str(tmp_path / "t.jinja")), "nothing to export")


def test_export_writes_the_source(tmp_path: Path) -> None:
    out = tmp_path / "llama-2.jinja"
    result = run("export", "llama-2", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_text(encoding="utf-8") == prompts.get("llama-2").source
    embedded = tmp_path / "alpaca.jinja"
    assert run("export", "alpaca", "--out", str(embedded), "--embed-default-system").returncode == 0
    assert embedded.read_text(encoding="utf-8") == prompts.export_source("alpaca", embed_default_system=True)
