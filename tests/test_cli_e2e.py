"""End to end: the installed `reportqa` script with the real model and index over the seed corpus.

One data directory per module: `index build` runs once (building the model on first use), then every
test drives a fresh process the way staff and other tools do (pipes, exit codes, locale, colour).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli_render import NO_MORE, NOT_COVERED

pytestmark = pytest.mark.slow

REPORTQA = Path(sys.executable).parent / "reportqa"
REPO = Path(__file__).resolve().parent.parent
SAMPLE = "2019年衡阳全市调解了多少件矛盾纠纷？"  # the Makefile's `make run` question
OUT_OF_SCOPE = "1990年衡阳的天气怎么样"  # weather, and a year no report covers
SEED_ID = "hengyang-2019-fazhi"
SEED_CITATION = "《衡阳市2019年度法治政府建设情况报告》"
JSON_FIELDS = {
    "rank", "score", "report_id", "report_title", "report_date", "section_id", "section_label",
    "section_title", "citation", "text", "highlight", "highlight_start", "highlight_end", "period", "period_kind",
}  # fmt: skip


def run(home: Path, *args: str, input: str | None = None, env: dict[str, str] | None = None):
    full_env = {k: v for k, v in os.environ.items() if k not in ("REPORTQA_CORPUS", "NO_COLOR", "FORCE_COLOR")}
    full_env.update({"REPORTQA_HOME": str(home), "HF_HUB_OFFLINE": "1", **(env or {})})
    return subprocess.run(
        [str(REPORTQA), *args],
        input=None if input is None else input.encode("utf-8"),
        capture_output=True,
        env=full_env,
        cwd=home,
        timeout=900,
    )


def out(proc) -> str:
    return proc.stdout.decode("utf-8")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("cli-home")
    proc = run(home, "index", "build")
    assert proc.returncode == 0, proc.stderr.decode()
    assert re.search(r"^stale:\s+no$", out(proc), re.MULTILINE), out(proc)
    return home


def test_index_status_after_build_is_fresh_and_reports_its_size(home: Path):
    proc = run(home, "index", "status")
    assert proc.returncode == 0
    fields = {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in out(proc).splitlines())}
    assert fields["stale"] == "no"
    assert int(fields["dimension"]) > 0
    assert fields["index size"] != "0 B"
    assert fields["built at"] != "-"


def test_ask_prints_citation_highlighted_answer_and_score(home: Path):
    proc = run(home, "ask", SAMPLE)
    assert proc.returncode == 0, proc.stderr.decode()
    text = out(proc)
    assert "\x1b[" not in text  # a pipe gets plain text
    first = text.splitlines()[0]
    assert first.startswith(f"1. {SEED_CITATION}") and "score" in first and "2020-03-17" in first
    highlighted = re.search(r"【(.+?)】", text)
    assert highlighted and "17076" in highlighted.group(1)  # the sentence with the number
    assert len(re.findall(r"^\d\. 《", text, re.MULTILINE)) == 3  # default --top-k 3


def test_ask_json_has_the_documented_shape(home: Path):
    proc = run(home, "ask", "--json", "--top-k", "2", SAMPLE)
    assert proc.returncode == 0
    lines = out(proc).splitlines()
    assert len(lines) == 1
    obj = json.loads(lines[0])
    assert set(obj) == {
        "question", "answered", "results", "years", "other_years", "note", "timeline", "understood_as", "ambiguous",
        "lang",
    }
    assert obj["years"] == [2019] and obj["timeline"] is None and obj["note"] is None
    assert obj["understood_as"] == SAMPLE and obj["ambiguous"] is None  # one report, nothing carried over
    assert obj["lang"] == "zh"
    assert obj["question"] == SAMPLE and obj["answered"] is True
    assert [r["rank"] for r in obj["results"]] == [1, 2]
    for r in obj["results"]:
        assert set(r) == JSON_FIELDS
        assert r["text"][r["highlight_start"] : r["highlight_end"]] == r["highlight"]
        assert re.fullmatch(r"\d+(\.\d+)*", r["section_id"])
        assert r["citation"].startswith(f"《{r['report_title']}》{r['section_label']}")
        assert r["report_id"] == SEED_ID


def test_question_outside_the_reports_says_so_with_suggestions_and_exit_1(home: Path):
    proc = run(home, "ask", OUT_OF_SCOPE)
    assert proc.returncode == 1
    lines = out(proc).splitlines()
    assert lines[0] == NOT_COVERED
    assert any(SEED_CITATION in line for line in lines[2:])
    as_json = run(home, "ask", "--json", OUT_OF_SCOPE)
    assert as_json.returncode == 1 and json.loads(out(as_json))["answered"] is False


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_every_mode_returns_cited_results(home: Path, mode: str):
    proc = run(home, "ask", "--json", "--mode", mode, "--report", SEED_ID, SAMPLE)
    assert proc.returncode in (0, 1)
    results = json.loads(out(proc))["results"]
    assert results and all(r["report_id"] == SEED_ID for r in results)


def test_unknown_report_filter_is_a_one_line_error(home: Path):
    proc = run(home, "ask", "--report", "no-such-report", SAMPLE)
    assert proc.returncode == 2
    err = proc.stderr.decode().strip()
    assert err.startswith("reportqa: error: ") and "no-such-report" in err and "\n" not in err
    batch = run(home, "ask", "--json", "--report", "no-such-report", "-", input=f"{SAMPLE}\n{SAMPLE}\n")
    assert batch.returncode == 2 and batch.stdout == b""  # fails once, before any answer
    assert batch.stderr.decode().count("no-such-report") == 1


def test_stdin_batch_answers_in_order_and_keeps_going_after_a_bad_line(home: Path):
    questions = [SAMPLE, "", OUT_OF_SCOPE, "衡陽市2019年調解了多少件矛盾糾紛"]
    proc = run(home, "ask", "--json", "-", input="\n".join(questions) + "\n")
    assert proc.returncode == 2  # a line was an error
    objs = [json.loads(line) for line in out(proc).splitlines()]
    assert len(objs) == 4
    assert objs[0]["question"] == SAMPLE and objs[0]["answered"] and "error" not in objs[0]
    assert objs[1]["error"].startswith("line 2: ")
    assert objs[2]["question"] == OUT_OF_SCOPE and objs[2]["answered"] is False
    assert objs[3]["answered"] and objs[3]["results"][0]["section_id"] == objs[0]["results"][0]["section_id"]


def test_stdin_batch_exit_codes(home: Path):
    assert run(home, "ask", "--json", "-", input=f"{SAMPLE}\n{SAMPLE}\n").returncode == 0
    assert run(home, "ask", "--json", "-", input=f"{SAMPLE}\n{OUT_OF_SCOPE}\n").returncode == 1


def test_stdin_batch_without_json_prints_each_answer(home: Path):
    proc = run(home, "ask", "-", input=f"{SAMPLE}\n{OUT_OF_SCOPE}\n")
    assert proc.returncode == 1
    text = out(proc)
    assert f"(Q1): {SAMPLE}" in text and f"(Q2): {OUT_OF_SCOPE}" in text and NOT_COVERED in text


def test_chat_session_from_a_pipe(home: Path):
    script = "\n".join(
        ["/help", SAMPLE, "/more", "/section 7.1", "/report", "/report nope", f"/report {SEED_ID}",
         "/section 42", "/bogus", "", "/quit", "this line comes after /quit"]
    )  # fmt: skip
    proc = run(home, "chat", input=script + "\n")
    assert proc.returncode == 0, proc.stderr.decode()
    text = out(proc)
    assert "/section ID" in text  # the help
    assert f"reportqa> {SAMPLE}" in text  # piped lines are echoed so the transcript reads
    after_more = text.split("reportqa> /more", 1)[1].split("reportqa> /section 7.1", 1)[0]
    assert re.search(r"^4\. 《", after_more, re.MULTILINE) or NO_MORE in after_more  # the next page
    after_section = text.split("reportqa> /section 7.1", 1)[1]
    assert after_section.lstrip("\n").startswith(f"{SEED_CITATION}七、(一) 推行多元化解机制")
    assert "unknown report id 'nope'" in text
    assert f"questions go to: {SEED_ID}" in text
    assert "no section '42'" in text
    assert "unknown command /bogus" in text
    assert "this line comes after /quit" not in text


def test_chat_ends_cleanly_at_end_of_input(home: Path):
    proc = run(home, "chat", input=SAMPLE + "\n")
    assert proc.returncode == 0 and proc.stderr.decode().count("Traceback") == 0
    assert SEED_CITATION in out(proc)


def test_terminal_colours_and_no_color(home: Path):
    coloured = out(run(home, "ask", SAMPLE, env={"FORCE_COLOR": "1", "TERM": "xterm-256color"}))
    assert "\x1b[" in coloured and "【" not in coloured
    plain = out(run(home, "ask", SAMPLE, env={"FORCE_COLOR": "1", "NO_COLOR": "1"}))
    assert "\x1b[" not in plain and "【" in plain


def test_answer_is_utf8_under_a_non_utf8_locale(home: Path):
    env = {"LC_ALL": "C", "LANG": "C", "PYTHONIOENCODING": "latin-1", "PYTHONUTF8": "0"}
    proc = run(home, "ask", SAMPLE, env=env)
    assert proc.returncode == 0
    assert SEED_CITATION in proc.stdout.decode("utf-8")


def test_eval_compares_modes_on_a_question_file(home: Path):
    dev = (REPO / "corpus" / "eval" / "hengyang-dev.jsonl").read_text(encoding="utf-8").splitlines()
    questions = home / "few.jsonl"
    questions.write_text("\n".join(dev[:6]) + "\n", encoding="utf-8")
    proc = run(home, "eval", str(questions), "--mode", "lexical", "--mode", "hybrid", "--json")
    assert proc.returncode == 0, proc.stderr.decode()
    metrics = json.loads(out(proc))["metrics"]
    assert set(metrics) == {"lexical", "hybrid"}
    text = run(home, "eval", str(questions))
    assert text.returncode == 0 and "hybrid" in out(text) and "top1" in out(text)


def test_eval_split_asks_and_shows_only_that_split(home: Path):
    rows = [json.loads(line) for line in (REPO / "corpus" / "eval" / "hengyang-dev.jsonl").open(encoding="utf-8")]
    few = [r for r in rows if r["split"] == "tune"][:4] + [r for r in rows if r["split"] == "heldout"][:4]
    questions = home / "mixed.jsonl"
    questions.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in few), encoding="utf-8")
    proc = run(home, "eval", str(questions), "--split", "tune", "--json")
    assert proc.returncode == 0, proc.stderr.decode()
    report = json.loads(out(proc))
    rows_shown = report["metrics"]["hybrid"]
    assert all(name.startswith("tune") for name in rows_shown) and rows_shown["tune"]["questions"] == 4
    text = out(run(home, "eval", str(questions), "--split", "tune"))
    assert "heldout" not in text and not any(r["question"] in text for r in few if r["split"] == "heldout")


def test_bench_json_reports_the_seed_corpus(home: Path):
    proc = run(home, "bench", "--json")
    assert proc.returncode == 0, proc.stderr.decode()
    (seed,) = json.loads(out(proc))["corpora"]
    assert seed["name"] == "seed" and seed["reports"] == 1
    assert seed["query_p50_ms"] > 0 and seed["cold_ask_seconds"] > 0
