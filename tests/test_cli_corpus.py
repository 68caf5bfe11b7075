"""`reportqa outline`, `show`, `reports list|add|remove`, `index status`, `telegram` config errors.

These parse reports but never load the embedding model, so they are fast; they run the real parser
and corpus manifest code on a copy of the repository's corpus.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import LONGHUA_FILE, invoke_cli
from typer.testing import CliRunner

from bot.cli import app

SEED_ID = "hengyang-2019-fazhi"
SEED_TITLE = "衡阳市2019年度法治政府建设情况报告"


@pytest.fixture
def corpus(seed_corpus: Path) -> Path:
    """A writable copy of the repository's corpus (manifest + seed report)."""
    return seed_corpus


invoke = invoke_cli


def assert_error(result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert "\n" not in line and line.startswith("reportqa: error: "), result.stderr
    for needle in needles:
        assert needle in line


def test_outline_of_the_default_corpus_has_7_chapters_and_21_sections(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("REPORTQA_CORPUS", raising=False)
    result = CliRunner().invoke(app, ["outline"])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert SEED_TITLE in lines[0] and SEED_ID in lines[0]
    ids = [line.split()[0] for line in lines[1:] if line.strip()]
    assert ids[0] == "0"
    assert [i for i in ids if re.fullmatch(r"\d+", i) and i != "0"] == [str(n) for n in range(1, 8)]
    assert len([i for i in ids if re.fullmatch(r"\d+\.\d+", i)]) == 21
    line_71 = next(line for line in lines if line.split()[0] == "7.1")
    assert "七、(一) 推行多元化解机制" in line_71 and "(1 段)" in line_71


def test_outline_of_an_unknown_report_is_an_error(corpus: Path):
    assert_error(invoke(corpus, "outline", "no-such-report"), "unknown report id", "no-such-report", SEED_ID)


def test_show_prints_the_whole_section_with_its_citation(corpus: Path):
    result = invoke(corpus, "show", "7.1")
    assert result.exit_code == 0, result.stderr
    first, *body = result.stdout.splitlines()
    assert first.startswith(f"《{SEED_TITLE}》七、(一) 推行多元化解机制")
    assert any("17076件" in line for line in body)


def test_show_a_chapter_includes_its_sections(corpus: Path):
    result = invoke(corpus, "show", "7")
    assert result.exit_code == 0, result.stderr
    for heading in ("七、(一) 推行多元化解机制", "七、(二)", "七、(三)"):
        assert heading in result.stdout


def test_show_unknown_section_names_it(corpus: Path):
    assert_error(invoke(corpus, "show", "9.9"), "no section", "9.9", f"reportqa outline {SEED_ID}")


def test_reports_list_shows_region_kind_year_period_date_and_title(corpus: Path):
    result = invoke(corpus, "reports", "list")
    assert result.exit_code == 0, result.stderr
    (line,) = result.stdout.splitlines()
    assert line.split()[:5] == [SEED_ID, "衡阳市", "法治政府建设情况报告", "2019", "回顾2019年"]
    assert "2020-03-17" in line and f"《{SEED_TITLE}》" in line


def test_reports_add_validates_shows_the_outline_and_lists_it(corpus: Path):
    title, issuer = "深圳市龙华区2019年法治政府建设工作报告", "深圳市龙华区人民政府"
    result = invoke(
        corpus, "reports", "add", str(LONGHUA_FILE), "--id", "longhua-2019",
        "--title", title, "--date", "2020-01-15", "--issuer", issuer,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "《深圳市龙华区2019年法治政府建设工作报告》" in result.stdout.splitlines()[0]
    assert re.search(r"^\s*1\.1\s", result.stdout, re.MULTILINE) is None  # Longhua's 一、 has no (一)
    assert re.search(r"^\s*3\.1\s+三、\(一\)", result.stdout, re.MULTILINE)
    assert (corpus / LONGHUA_FILE.name).is_file()
    manifest = (corpus / "reports.toml").read_text(encoding="utf-8")
    assert 'id = "longhua-2019"' in manifest and 'issuer = "深圳市龙华区人民政府"' in manifest

    listed = invoke(corpus, "reports", "list").stdout
    assert "longhua-2019" in listed and "2020-01-15" in listed
    # With two reports, `show` needs to know which one.
    assert_error(invoke(corpus, "show", "3.1"), "--report")
    shown = invoke(corpus, "show", "3.1", "--report", "longhua-2019")
    assert shown.exit_code == 0 and "规范性文件" in shown.stdout

    again = invoke(corpus, "reports", "add", str(LONGHUA_FILE), "--id", "longhua-2019")
    assert_error(again, "already listed")


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"", "empty"),
        (b"\x00\x01\x02\xff" * 100, "binary"),
        ("只有一段文字，没有任何标题。".encode(), "no headings"),
    ],
    ids=["empty", "binary", "no-headings"],
)
def test_reports_add_rejects_bad_files_and_changes_nothing(corpus: Path, tmp_path: Path, content: bytes, needle: str):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(content)
    before = (corpus / "reports.toml").read_bytes()
    assert_error(invoke(corpus, "reports", "add", str(bad)), str(bad), needle)
    assert (corpus / "reports.toml").read_bytes() == before
    assert not (corpus / "bad.txt").exists()


def test_reports_add_rejects_a_bad_date(corpus: Path):
    assert_error(invoke(corpus, "reports", "add", str(LONGHUA_FILE), "--date", "15/01/2020"), "--date", "ISO")


def test_reports_add_missing_file(corpus: Path, tmp_path: Path):
    assert_error(invoke(corpus, "reports", "add", str(tmp_path / "nope.txt")), "nope.txt", "not found")


def test_reports_remove_drops_it_from_the_manifest_but_keeps_the_file(corpus: Path):
    result = invoke(corpus, "reports", "remove", SEED_ID)
    assert result.exit_code == 0, result.stderr
    assert SEED_ID not in (corpus / "reports.toml").read_text(encoding="utf-8")
    assert (corpus / "hengyang-2019-fazhi-zhengfu-report.txt").is_file()
    assert_error(invoke(corpus, "reports", "remove", SEED_ID), "unknown report id")


def test_index_status_before_any_build_says_stale(corpus: Path):
    result = invoke(corpus, "index", "status")
    assert result.exit_code == 0, result.stderr
    fields = dict(line.split(":", 1) for line in result.stdout.splitlines())
    assert fields["stale"].strip().startswith("yes") and SEED_ID in fields["stale"]
    assert fields["reports"].strip() == "1"
    assert int(fields["paragraphs"]) > 20
    assert fields["model"].strip().startswith("multilingual-e5-small")


def test_telegram_without_a_token_is_a_one_line_error(corpus: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    assert_error(invoke(corpus, "telegram"), "TELEGRAM_BOT_TOKEN")


def test_eval_of_a_missing_or_malformed_file_fails_before_the_model_loads(corpus: Path, tmp_path: Path):
    assert_error(invoke(corpus, "eval", str(tmp_path / "none.jsonl")), "none.jsonl", "not found")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "q1", "question": "调解了多少纠纷"}\n{"id": "q2"\n', encoding="utf-8")
    assert_error(invoke(corpus, "eval", str(bad), "--mode", "lexical"), "bad.jsonl:2")
    assert not (tmp_path / "home" / "index").exists()


def test_eval_of_a_split_the_file_lacks_names_the_splits_it_has(corpus: Path, tmp_path: Path):
    few = tmp_path / "few.jsonl"
    few.write_text('{"id": "q1", "question": "调解了多少纠纷", "report_id": "hengyang-2019-fazhi", '
                   '"gold_sections": ["7.1"], "answer_key": "17076", "split": "tune"}\n', encoding="utf-8")
    assert_error(invoke(corpus, "eval", str(few), "--split", "heldout"), "heldout", "tune")
    dialogue = tmp_path / "dialogue.jsonl"
    turns = [
        {"conversation": "d1", "turn": 1, "question": "2019年调解了多少纠纷", "standalone": "2019年调解了多少纠纷",
         "type": "fresh", "split": "tune"},
        {"conversation": "d1", "turn": 2, "question": "那2018年呢", "standalone": "2018年调解了多少纠纷",
         "type": "year", "split": "heldout"},
    ]
    dialogue.write_text("".join(json.dumps(t, ensure_ascii=False) + "\n" for t in turns), encoding="utf-8")
    # a dialogue whose turns are of two splits belongs to neither
    assert_error(invoke(corpus, "eval", str(dialogue), "--split", "tune"), "'tune'", "heldout+tune")
    assert not (tmp_path / "home" / "index").exists()


def test_eval_rejects_an_unknown_mode(corpus: Path, tmp_path: Path):
    assert_error(invoke(corpus, "eval", str(tmp_path / "x.jsonl"), "--mode", "magic"), "--mode")


def test_chinese_arguments_survive_a_c_locale(corpus: Path):
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONIOENCODING": "ascii"}
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "reportqa"), "--corpus", str(corpus), "outline", "衡阳不存在"],
        capture_output=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "unknown report id '衡阳不存在'" in proc.stderr.decode("utf-8")
