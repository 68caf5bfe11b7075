"""Fidelity: the committed PDF and DOCX versions of four reports (the seed, two shared reports and a
regulation; auto-numbered, per-paragraph numbered and typed labels) parse to the same tree as their
text versions — same chapters and sections (ids, labels, titles), every paragraph equal after
whitespace is removed, the same title line and signing date."""

from __future__ import annotations

import json
import re

import pytest
from conftest import REPO
from published_files import FIXTURES

from retrieval.corpus import meta_from_file
from retrieval.document import ReportMeta
from retrieval.parse import parse_report
from retrieval.readers.fidelity import compare_trees
from retrieval.sources import read_report_text

SOURCES = json.loads((FIXTURES / "sources.json").read_text(encoding="utf-8"))
META = ReportMeta(report_id="x", title="x", file="x")
CASES = [(rid, fmt) for rid in SOURCES for fmt in ("pdf", "docx")]


@pytest.mark.parametrize(("rid", "fmt"), CASES, ids=[f"{r}.{f}" for r, f in CASES])
def test_published_file_parses_to_the_text_versions_tree(rid: str, fmt: str):
    text_path = REPO / SOURCES[rid]["text"]
    expected = parse_report(read_report_text(text_path), META)
    got = parse_report(read_report_text(FIXTURES / f"{rid}.{fmt}"), META)
    f = compare_trees(expected, got, expected_title=meta_from_file(text_path).title)
    assert f.sections_equal, f.first_differences
    assert f.title_equal and f.signed_equal, f.first_differences
    assert f.paragraphs_expected >= 20
    assert f.paragraph_agreement == 1.0, f.first_differences


def test_auto_numbered_labels_are_not_in_the_docx_text_but_come_back():
    import docx

    raw = [p.text for p in docx.Document(str(FIXTURES / "hengyang-2019.docx")).paragraphs]
    assert not any(re.match(r"^[一二三四五六七]、", t) for t in raw)  # Word shows them; the runs lack them
    read = read_report_text(FIXTURES / "hengyang-2019.docx").splitlines()
    assert [line[:2] for line in read if re.match(r"^[一二三四五六七]、", line)] == [
        "一、", "二、", "三、", "四、", "五、", "六、", "七、"]
    assert any(line.startswith("（一）健全法治政府建设工作机制。") for line in read)


def test_the_pdf_fixtures_use_distinct_fonts_for_headings_and_have_page_furniture():
    import pdfplumber

    with pdfplumber.open(FIXTURES / "hengyang-2019.pdf") as pdf:
        fonts = {c["fontname"].split("+")[-1] for page in pdf.pages for c in page.chars}
        footer = pdf.pages[1].crop((0, pdf.pages[1].height * 0.88, pdf.pages[1].width, pdf.pages[1].height))
        footer_text = footer.extract_text()
    assert len({f.split("-")[0] for f in fonts}) >= 3, fonts  # body, 黑体 and 楷体 families
    assert re.search(r"—\s*2\s*—", footer_text)  # the page number the reader has to remove
    text = read_report_text(FIXTURES / "hengyang-2019.pdf")
    assert not re.search(r"—\s*\d+\s*—", text)
    assert text.count("衡阳市2019年度法治政府建设情况报告") == 1  # the running header is gone, the title stays
