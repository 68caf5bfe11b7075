"""Hostile questions through `reportqa ask` with the real model: exit 0 (answered), 1 (not covered)
or 2 (one `reportqa: error:` line), never a traceback. tests/test_cli.py covers what fails before
the model loads (empty, too long, binary argv); here the questions reach the retriever and the
model's encoder, and a stdin batch of random lines must give exactly one JSON line per input line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fuzz_input import HOSTILE
from typer.testing import CliRunner

from bot.cli import app
from retrieval.config import Settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def home(model_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("cli-fuzz-home")
    (home / "models").symlink_to(Settings(home=model_home).models_dir, target_is_directory=True)
    return home


def invoke(home: Path, args: list[str], input: bytes | None = None):
    return CliRunner().invoke(app, ["--home", str(home), "--corpus", str(REPO / "corpus"), *args], input=input)


def json_lines(text: str) -> list[dict]:
    """JSON Lines are split at "\n" only: a question may hold U+2028, which str.splitlines() also splits at."""
    return [json.loads(line) for line in text.split("\n") if line]


def assert_clean_exit(result) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in (0, 1, 2), (result.exit_code, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    if result.exit_code == 2:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("reportqa: error: "), result.stderr
    else:
        assert "《衡阳市2019年度法治政府建设情况报告》" in result.stdout  # a cited passage or suggestion


@pytest.mark.parametrize(("text", "refused"), [(t, r) for _, t, r in HOSTILE], ids=[i for i, _, _ in HOSTILE])
def test_hostile_question_as_an_argument(home, text, refused):
    result = invoke(home, ["ask", text])
    assert_clean_exit(result)
    if refused is not None:
        assert (result.exit_code == 2) == refused, result.stderr


def test_hostile_batch_on_stdin_in_a_real_process_gives_one_json_line_per_line(home):
    lines = [t.replace("\n", " ").replace("\r", " ").encode("utf-8", "surrogatepass") for _, t, _ in HOSTILE]
    lines += [b"\xff\xfe\x00\x01 binary", b"", "调解了多少矛盾纠纷".encode("gbk")]
    env = {**os.environ, "REPORTQA_HOME": str(home), "REPORTQA_CORPUS": str(REPO / "corpus"), "HF_HUB_OFFLINE": "1"}
    reportqa = Path(sys.executable).parent / "reportqa"
    proc = subprocess.run(
        [str(reportqa), "ask", "--json", "-"],
        input=b"\n".join(lines) + b"\n",
        capture_output=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )
    assert proc.returncode == 2  # some lines are errors
    assert b"Traceback" not in proc.stderr
    out = json_lines(proc.stdout.decode("utf-8"))
    assert len(out) == len(lines)
    assert all(not o["results"] for o in out if o.get("error"))
    assert sum(1 for o in out if o.get("error")) >= 5


_line = st.text(st.characters(exclude_characters="\n\r"), max_size=60)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_line, min_size=1, max_size=8))
def test_random_batches_on_stdin_give_one_json_line_per_line(home, batch):
    data = "\n".join(batch).encode("utf-8", "surrogatepass") + b"\n"
    result = invoke(home, ["ask", "--json", "-"], input=data)
    assert result.exit_code in (0, 1, 2), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    out = json_lines(result.stdout)
    assert len(out) == len(batch)
