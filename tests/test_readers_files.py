"""Reports as published, read from real files: PDF (LibreOffice export with CJK fonts), DOCX
(python-docx with Word auto-numbering), DOC (LibreOffice), and the bad files staff meet — each a
one-line error, the manifest byte-identical, nothing copied in."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import REPO, invoke_cli
from published_files import FIXTURES, cid_pdf, docx_without_document, scanned_pdf, truncated

from retrieval.corpus import TEXT_CACHE, load_corpus
from retrieval.document import ReportMeta
from retrieval.errors import CorpusError
from retrieval.parse import parse_report
from retrieval.readers.legacy import soffice
from retrieval.sources import read_report_text

SEED_PDF = FIXTURES / "hengyang-2019.pdf"
SEED_DOCX = FIXTURES / "hengyang-2019.docx"


@pytest.fixture
def corpus(seed_corpus: Path) -> Path:
    return seed_corpus


invoke = invoke_cli


def assert_refused(corpus: Path, file: Path, *needles: str) -> None:
    before = (corpus / "reports.toml").read_bytes()
    listing = sorted(p.name for p in corpus.iterdir())
    result = invoke(corpus, "reports", "add", str(file))
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert "\n" not in line and line.startswith("reportqa: error: "), result.stderr
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in line, line
    assert (corpus / "reports.toml").read_bytes() == before
    assert sorted(p.name for p in corpus.iterdir() if p.name != TEXT_CACHE) == listing


# ------------------------------------------------------------------------------- bad files


def test_a_scanned_pdf_names_its_pages_and_says_ocr(corpus: Path, tmp_path: Path):
    assert_refused(corpus, scanned_pdf(tmp_path / "scan.pdf", pages=12), "no text layer on pages 1–12", "OCR")


def test_a_pdf_whose_glyphs_do_not_decode_is_refused_after_both_readers(corpus: Path, tmp_path: Path):
    assert_refused(corpus, cid_pdf(tmp_path / "cid.pdf"), "text layer unusable", "(cid:")


def test_an_encrypted_pdf_is_refused(corpus: Path):
    assert_refused(corpus, FIXTURES / "hengyang-2019-encrypted.pdf", "encrypted")


def test_a_truncated_pdf_is_refused(corpus: Path, tmp_path: Path):
    assert_refused(corpus, truncated(SEED_PDF, tmp_path / "cut.pdf"), "truncated")


def test_a_damaged_pdf_is_refused(corpus: Path, tmp_path: Path):
    data = bytearray(SEED_PDF.read_bytes())
    data[200:-40] = b"\x00" * (len(data) - 240)  # header and %%EOF kept, everything between destroyed
    bad = tmp_path / "damaged.pdf"
    bad.write_bytes(bytes(data))
    assert_refused(corpus, bad, "damaged.pdf")


def test_a_text_file_named_pdf_and_junk_named_docx_are_refused(corpus: Path, tmp_path: Path):
    fake = tmp_path / "report.pdf"
    fake.write_text("一、总体情况\n这不是PDF。\n", encoding="utf-8")
    assert_refused(corpus, fake, "not a PDF file")
    junk = tmp_path / "report.docx"
    junk.write_bytes(b"\x89PNG\r\n" + bytes(range(256)) * 4)
    assert_refused(corpus, junk, "not a DOCX file")


def test_a_truncated_or_hollow_docx_is_refused(corpus: Path, tmp_path: Path):
    assert_refused(corpus, truncated(SEED_DOCX, tmp_path / "cut.docx"), "cut.docx", "DOCX")
    assert_refused(corpus, docx_without_document(tmp_path / "hollow.docx"), "hollow.docx", "not a DOCX file")


def test_a_doc_without_libreoffice_names_the_package(corpus: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("REPORTQA_SOFFICE", "/nonexistent/soffice")
    assert_refused(corpus, FIXTURES / "hengyang-2019.doc", "LibreOffice", "libreoffice-writer-nogui")


# ------------------------------------------------------------------------------ good files


def test_reports_add_a_pdf_keeps_the_original_with_its_sha256_and_answers_from_it(corpus: Path):
    import hashlib

    src = FIXTURES / "longhua-2019-fazhi.pdf"
    result = invoke(corpus, "reports", "add", str(src))
    assert result.exit_code == 0, result.stderr
    assert (corpus / src.name).read_bytes() == src.read_bytes()
    manifest = (corpus / "reports.toml").read_text(encoding="utf-8")
    assert f'sha256 = "{hashlib.sha256(src.read_bytes()).hexdigest()}"' in manifest
    # metadata detected from the PDF's own title line and signature block
    assert 'title = "深圳市龙华区2019年法治政府建设工作报告"' in manifest
    assert 'region = "龙华区"' in manifest and "year = 2019" in manifest
    listed = invoke(corpus, "reports", "list").stdout
    assert "longhua-2019-fazhi" in listed
    shown = invoke(corpus, "show", "3.1", "--report", "longhua-2019-fazhi")
    assert shown.exit_code == 0 and "规范性文件" in shown.stdout
    # the extracted text is cached by content: a second load does not read the PDF again
    cached = list((corpus / TEXT_CACHE).glob("*.txt"))
    assert len(cached) == 1
    reports = load_corpus([corpus])
    assert {r.meta.report_id for r in reports} == {"hengyang-2019-fazhi", "longhua-2019-fazhi"}


def test_a_corrupt_text_cache_is_ignored_and_rewritten(tmp_path: Path):
    cache = tmp_path / "cache"
    first = read_report_text(SEED_DOCX, cache_dir=cache)
    (entry,) = cache.glob("*.txt")
    entry.write_bytes(b"\xff\xfe\x00garbage")
    assert read_report_text(SEED_DOCX, cache_dir=cache) == first
    assert entry.read_text(encoding="utf-8") == first  # and the entry is good again


@pytest.mark.slow
@pytest.mark.skipif(soffice() is None, reason="LibreOffice (soffice) is not installed; .ci/run installs it")
def test_a_doc_file_converts_through_libreoffice_to_the_same_tree(tmp_path: Path):
    seed = REPO / "corpus" / "hengyang-2019-fazhi-zhengfu-report.txt"
    meta = ReportMeta(report_id="x", title="x", file="x")
    expected = parse_report(read_report_text(seed), meta)
    got = parse_report(read_report_text(FIXTURES / "hengyang-2019.doc"), meta)
    assert [(s.section_id, s.label, s.title) for s in got.walk()] == [
        (s.section_id, s.label, s.title) for s in expected.walk()
    ]


def test_docx_tables_are_read_in_body_order_one_line_per_row(tmp_path: Path):
    import docx

    document = docx.Document()
    document.add_paragraph("一、主要指标")
    document.add_paragraph("全年主要指标完成情况如下。")
    table = document.add_table(rows=3, cols=3)
    for r, row in enumerate([("指标", "2019年", "增长"), ("地区生产总值", "1000亿元", "7.5%"), ("合计", "", "")]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    table.cell(2, 0).merge(table.cell(2, 2))  # a merged cell: python-docx repeats it per grid column
    table.cell(2, 0).text = "注：数据为初步统计"
    document.add_paragraph("二、下一步工作")
    document.add_paragraph("继续推进各项工作。")
    path = tmp_path / "table.docx"
    document.save(str(path))
    lines = read_report_text(path).splitlines()
    assert lines == [
        "一、主要指标", "全年主要指标完成情况如下。", "指标  2019年  增长", "地区生产总值  1000亿元  7.5%",
        "注：数据为初步统计", "二、下一步工作", "继续推进各项工作。",
    ]
    report = parse_report("\n".join(lines), ReportMeta(report_id="t", title="t", file="t"))
    assert [s.label for s in report.walk() if s.level == 1] == ["一、", "二、"]


# ------------------------------------------------------------------------------------- fuzz

_PDF = SEED_PDF.read_bytes()
_DOCX = SEED_DOCX.read_bytes()


@pytest.mark.parametrize("suffix", [".pdf", ".docx"])
def test_mangled_published_files_give_text_or_a_corpus_error_never_a_traceback(tmp_path: Path, suffix: str):
    """Real files with bytes flipped, cut or spliced: the reader returns text or raises CorpusError."""
    import random

    rng = random.Random(20261202)
    original = _PDF if suffix == ".pdf" else _DOCX
    for n in range(25):
        data = bytearray(original)
        kind = n % 3
        if kind == 0:  # flip bytes all over
            for _ in range(rng.randint(1, 400)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        elif kind == 1:  # cut a piece out of the middle
            a = rng.randrange(len(data))
            del data[a : a + rng.randint(1, 20000)]
        else:  # splice in junk
            a = rng.randrange(len(data))
            data[a:a] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 5000)))
        path = tmp_path / f"m{n}{suffix}"
        path.write_bytes(bytes(data))
        try:
            text = read_report_text(path)
        except CorpusError as exc:
            assert "\n" not in str(exc) and str(path) in str(exc)
        else:
            assert isinstance(text, str) and text.endswith("\n")


def test_docx_with_mangled_xml_inside_a_valid_zip_gives_text_or_a_corpus_error(tmp_path: Path):
    """Word XML damaged inside an intact zip (numbering, styles, body): text or CorpusError."""
    import io
    import random
    import zipfile

    rng = random.Random(7)
    with zipfile.ZipFile(SEED_DOCX) as zf:
        parts = {n: zf.read(n) for n in zf.namelist()}
    targets = ["word/numbering.xml", "word/styles.xml", "word/document.xml"]
    edits = [b'w:val="%d"' % rng.randint(-5, 99), b'w:val="x"', b'w:ilvl="-1"', b'w:numId="999"', b"<w:p/>", b"<"]
    for n in range(24):
        target = targets[n % 3]
        data = bytearray(parts[target])
        for _ in range(rng.randint(1, 12)):
            at = data.find(b"w:", rng.randrange(len(data)))
            if at < 0:
                continue
            data[at : at + rng.randint(1, 30)] = rng.choice(edits)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as out:
            for name, content in parts.items():
                out.writestr(name, bytes(data) if name == target else content)
        path = tmp_path / f"x{n}.docx"
        path.write_bytes(buf.getvalue())
        try:
            text = read_report_text(path)
        except CorpusError as exc:
            assert "\n" not in str(exc) and str(path) in str(exc)
        else:
            assert isinstance(text, str)


def test_a_published_file_replaced_by_hand_is_read_as_it_is_now_with_a_warning(
    corpus: Path, caplog: pytest.LogCaptureFixture
):
    src = FIXTURES / "longhua-2019-fazhi.docx"
    assert invoke(corpus, "reports", "add", str(src)).exit_code == 0
    shutil.copyfile(FIXTURES / "longhua-2019-fazhi.pdf", corpus / src.name.replace(".docx", ".pdf"))
    manifest = corpus / "reports.toml"
    manifest.write_text(manifest.read_text(encoding="utf-8").replace(src.name, src.name.replace(".docx", ".pdf")),
                        encoding="utf-8")  # the entry now points at a different file than the one added
    with caplog.at_level("WARNING", logger="reportqa.corpus"):
        reports = load_corpus([corpus])
    assert "longhua-2019-fazhi" in {r.meta.report_id for r in reports}
    assert any("differs from the one added" in r.getMessage() for r in caplog.records)
