"""The `reportqa` command line without the embedding model: options, exit codes, bad input, stdin mode.

Everything here must fail before any model or index loads, so each test also checks that the data
directory (where the model and index would go) was never created.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import MAX_TOP_K, CliState, Mode, app
from retrieval.retriever import MAX_QUESTION_CHARS, MODES
from retrieval.retriever import MAX_TOP_K as RETRIEVER_MAX_TOP_K

REPO = Path(__file__).resolve().parent.parent
REPORTQA = Path(sys.executable).parent / "reportqa"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data directory that does not exist yet: if a test creates it, something loaded the model/index."""
    home = tmp_path / "home"
    monkeypatch.setenv("REPORTQA_HOME", str(home))
    monkeypatch.delenv("REPORTQA_CORPUS", raising=False)
    return home


def invoke(args: list[str], input: bytes | str | None = None, **extra):
    return CliRunner().invoke(app, args, input=input, **extra)


def run_cli(args: list, home: Path, input: bytes | None = None, env: dict | None = None, **kw):
    full_env = {**os.environ, "REPORTQA_HOME": str(home), "HF_HUB_OFFLINE": "1", **(env or {})}
    full_env.pop("REPORTQA_CORPUS", None)
    return subprocess.run(
        [str(REPORTQA), *args], input=input, capture_output=True, env=full_env, cwd=REPO, timeout=120, **kw
    )


def assert_one_line_error(stderr: str, *needles: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("reportqa: error: "), stderr
    assert "Traceback" not in stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_console_script_is_installed():
    assert REPORTQA.exists(), "run `pip install -e .` (make test does) so the `reportqa` script exists"


def test_mode_choices_and_limits_match_the_retriever():
    assert tuple(m.value for m in Mode) == MODES
    assert MAX_TOP_K == RETRIEVER_MAX_TOP_K


def test_help_lists_every_command(home: Path):
    result = invoke(["--help"])
    assert result.exit_code == 0
    commands = ("ask", "chat", "reports", "outline", "show", "index", "eval", "bench", "telegram", "feedback")
    for command in commands:
        assert command in result.stdout
    for option in ("--corpus", "--home", "--model", "--debug"):
        assert option in result.stdout


def test_no_arguments_prints_help_without_an_error_line(home: Path):
    result = invoke([])
    assert "Usage" in result.stdout
    assert "error" not in result.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["ask"], "Missing argument"),
        (["ask", "调解了多少纠纷", "--mode", "fuzzy"], "--mode"),
        (["ask", "调解了多少纠纷", "--top-k", "0"], "--top-k"),
        (["ask", "调解了多少纠纷", "--top-k", "many"], "--top-k"),
        (["frobnicate"], "frobnicate"),
        (["show"], "Missing argument"),
        (["reports", "remove"], "Missing argument"),
        (["eval", "--mode", "dense"], "Missing argument"),
    ],
)
def test_usage_errors_are_one_line_with_exit_2(home: Path, args: list[str], needle: str):
    result = invoke(args)
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, needle)
    assert result.stdout == ""
    assert not home.exists()


@pytest.mark.parametrize(
    ("question", "needle"),
    [
        ("", "empty"),
        ("   \t ", "empty"),
        ("问" * 100_000, "too long"),
        ("a" * (MAX_QUESTION_CHARS + 1), "too long"),
        ("调解\x00\x07纠纷", "not readable text"),
    ],
    ids=["empty", "blank", "100k-chars", "one-over-limit", "control-chars"],
)
def test_bad_questions_fail_before_anything_loads(home: Path, question: str, needle: str):
    result = invoke(["ask", question])
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, needle)
    assert not home.exists()


def test_question_at_the_limit_is_not_rejected_as_too_long(home: Path, tmp_path: Path):
    # It passes the input check and goes on to the corpus (missing here), proving the limit is inclusive.
    result = invoke(["--corpus", str(tmp_path / "none"), "ask", "a" * MAX_QUESTION_CHARS])
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "corpus directory not found")


def test_missing_corpus_dir_names_it(home: Path, tmp_path: Path):
    missing = tmp_path / "no-such-corpus"
    result = invoke(["--corpus", str(missing), "ask", "调解了多少纠纷"])
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, str(missing), "not found")
    assert not home.exists()


def test_missing_corpus_dir_from_the_environment(home: Path, tmp_path: Path):
    missing = tmp_path / "env-corpus"
    result = invoke(["outline"], env={"REPORTQA_CORPUS": f"{REPO / 'corpus'}{os.pathsep}{missing}"})
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, str(missing))


def test_global_options_build_the_settings(home: Path, tmp_path: Path):
    state = CliState()
    corpus_a, corpus_b = tmp_path / "a", tmp_path / "b"
    invoke(
        [
            "--corpus",
            str(corpus_a),
            "--corpus",
            str(corpus_b),
            "--home",
            str(tmp_path / "h"),
            "--model",
            "/models/x",
            "ask",
            "",
        ],
        obj=state,
    )
    settings = state.settings()
    assert settings.corpus_dirs == (corpus_a, corpus_b)
    assert settings.home == tmp_path / "h"
    assert settings.model == "/models/x"


def test_environment_settings_apply_without_options(home: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("REPORTQA_MODEL", "some-model")
    state = CliState()
    invoke(["ask", ""], obj=state)
    assert state.settings().home == home
    assert state.settings().model == "some-model"


def test_debug_shows_the_traceback(home: Path, tmp_path: Path):
    result = invoke(["--debug", "--corpus", str(tmp_path / "nope"), "ask", "调解了多少纠纷"])
    assert result.exit_code == 2
    assert "Traceback" in result.stderr
    assert "CorpusError" in result.stderr


def test_stdin_mode_reports_every_bad_line_in_order_without_loading(home: Path):
    lines = [b"", b"\xff\xfe\x00\x9c junk", "问".encode() * 5000, b"  ", "调解\x01".encode()]
    result = invoke(["ask", "--json", "-"], input=b"\n".join(lines) + b"\n")
    assert result.exit_code == 2
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(out) == len(lines)
    for number, obj in enumerate(out, 1):
        assert obj["error"].startswith(f"line {number}: ")
        assert obj["answered"] is False and obj["results"] == []
    assert "empty" in out[0]["error"] and "UTF-8" in out[1]["error"] and "too long" in out[2]["error"]
    assert out[1]["question"] is None and out[2]["question"] is None
    assert out[4]["question"] == "调解\x01"
    assert not home.exists()


def test_json_lines_stay_one_line_even_with_unicode_line_separators(home: Path):
    question = "a\u2028\x01\x02\x03\u2029"  # rejected (not readable) but echoed in the JSON object
    result = invoke(["ask", "--json", "-"], input=(question + "\n").encode())
    assert result.exit_code == 2
    assert len(result.stdout.splitlines()) == 1  # str.splitlines breaks at raw U+2028/U+2029
    assert json.loads(result.stdout)["question"] == question


def test_stdin_mode_with_no_input_succeeds_quietly(home: Path):
    result = invoke(["ask", "--json", "-"], input=b"")
    assert result.exit_code == 0
    assert result.stdout == ""


def test_stdin_line_of_a_megabyte_is_bounded_and_the_next_line_still_read(home: Path):
    huge = b"x" * (1 << 20)
    result = invoke(["ask", "--json", "-"], input=huge + b"\n\n")
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["error"].split(":")[0] for o in out] == ["line 1", "line 2"]
    assert "too long" in out[0]["error"]


def test_binary_argv_is_rejected_in_a_real_process(home: Path):
    proc = run_cli([b"ask", b"\xff\xfe\x80abc"], home)
    assert proc.returncode == 2
    assert_one_line_error(proc.stderr.decode("utf-8"), "not readable text")


def test_output_is_utf8_whatever_the_locale(home: Path):
    env = {"LC_ALL": "C", "LANG": "C", "PYTHONIOENCODING": "latin-1", "PYTHONUTF8": "0"}
    proc = run_cli(["ask", "--json", "-"], home, input="调解\x01\x02纠纷\n".encode(), env=env)
    assert proc.returncode == 2
    obj = json.loads(proc.stdout.decode("utf-8"))
    assert obj["question"] == "调解\x01\x02纠纷"


def test_keyboard_interrupt_exits_130_quietly(home: Path):
    env = {**os.environ, "REPORTQA_HOME": str(home)}
    proc = subprocess.Popen(
        [str(REPORTQA), "ask", "--json", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=REPO,
    )
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(b"\n")
        proc.stdin.flush()
        assert "error" in json.loads(proc.stdout.readline())  # now it is waiting for the next line
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)  # stdin stays open: closing it first would race EOF against the signal
        stderr = proc.stderr.read() if proc.stderr else b""
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert stderr == b""


def test_feedback_export_without_a_log_is_a_clear_error(home: Path, tmp_path: Path):
    result = invoke(["feedback", "export", "--out", str(tmp_path / "draft.jsonl")])
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "no question log")
    assert not (tmp_path / "draft.jsonl").exists()


def test_feedback_export_writes_the_thumbs_down_questions(home: Path, tmp_path: Path):
    from bot.question_log import QuestionLog
    from retrieval.answer import Answer

    log = QuestionLog.open(home)
    try:
        bad = log.record(1, "private", Answer("公积金利率是多少", False))
        good = log.record(2, "private", Answer("调解了多少纠纷", True))
        log.vote(bad, helpful=False)
        log.vote(good, helpful=True)
    finally:
        log.close()
    out = tmp_path / "draft.jsonl"
    result = invoke(["--home", str(home), "feedback", "export", "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    assert "1 question" in result.stdout
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["question"] for r in rows] == ["公积金利率是多少"]
