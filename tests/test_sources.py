"""read_report_text: encodings, line ends, HTML, and clear errors for files that are not reports."""

from __future__ import annotations

import codecs
import html

import pytest
from conftest import CORPORA, SEED_FILE, tree_signature

from retrieval.document import ReportMeta
from retrieval.errors import CorpusError
from retrieval.parse import parse_report
from retrieval.sources import decode_bytes, html_to_text, looks_like_html, read_report_text

META = ReportMeta(report_id="seed", title="seed", file="seed.txt")
SEED_TEXT = SEED_FILE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def seed_tree() -> list:
    return tree_signature(parse_report(read_report_text(SEED_FILE), META))


def write(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_utf8_seed_is_read_as_is():
    assert read_report_text(SEED_FILE) == SEED_TEXT


@pytest.mark.parametrize("encoding", ["gbk", "gb18030"])
def test_chinese_legacy_encodings_parse_to_the_same_tree(tmp_path, seed_tree, encoding):
    text = SEED_TEXT if encoding == "gb18030" else SEED_TEXT.replace("\xa0", " ")  # GBK has no U+00A0
    path = write(tmp_path, f"seed-{encoding}.txt", text.encode(encoding))
    decoded = read_report_text(path)
    assert decoded == text
    assert tree_signature(parse_report(decoded, META)) == seed_tree


@pytest.mark.parametrize(
    "bom,encoding",
    [(codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")],
)
def test_bom_and_crlf_are_normalised(tmp_path, seed_tree, bom, encoding):
    data = bom + SEED_TEXT.replace("\n", "\r\n").encode(encoding)
    decoded = read_report_text(write(tmp_path, "seed-bom.txt", data))
    assert decoded == SEED_TEXT  # no BOM, LF line ends: offsets are the same as for the plain file
    assert tree_signature(parse_report(decoded, META)) == seed_tree


def test_old_mac_line_ends(tmp_path):
    assert read_report_text(write(tmp_path, "cr.txt", "一、甲\r乙。\r".encode())) == "一、甲\n乙。\n"


def seed_as_html() -> str:
    """The seed page as a browser would get it: block elements, a script, a style, entities."""
    body = []
    for i, line in enumerate(SEED_TEXT.split("\n")):
        cell = html.escape(line, quote=False).replace("\xa0", "&nbsp;")
        if line.startswith("七、"):
            cell = "&#19971;" + cell[1:]  # 七 as a numeric character reference
        if "法治政府" in line and i % 3 == 0:
            cell = cell.replace("法治政府", "<b>法治</b><span>政府</span>", 1)
        tag = "div" if i % 2 else "p"
        body.append(f'<{tag} class="c{i}">{cell}</{tag}>' if line else "<p>&nbsp;</p>")
    return (
        '<!DOCTYPE html>\n<html lang="zh"><head><meta charset="utf-8"><title>衡阳</title>'
        "<style>p { margin: 0 }</style><script>var s = '一、不是正文';</script></head>\n<body>\n"
        "<script type=\"text/javascript\">document.write('扫一扫 &amp; 更多');</script>\n"
        + "\n".join(body)
        + "\n<div>A &amp; B<br>C</div><noscript>请启用脚本</noscript>\n</body></html>\n"
    )


@pytest.mark.parametrize("name", ["seed.html", "seed.htm", "seed-page.txt"])
def test_html_page_parses_to_the_same_tree(tmp_path, seed_tree, name):
    page = seed_as_html()
    path = write(tmp_path, name, page.encode("utf-8"))
    text = read_report_text(path)
    assert (
        "<" not in text and "var s" not in text and "document.write" not in text and "请启用脚本" not in text
    )
    assert "A & B\nC\n" in text
    # the page's extra block after the signature ("A & B", "C") aside, it is the seed's tree
    assert tree_signature(parse_report(text.replace("A & B\nC\n", ""), META)) == seed_tree


def test_html_in_gbk(tmp_path, seed_tree):
    page = seed_as_html().replace("&nbsp;", " ").replace('<meta charset="utf-8">', '<meta charset="gbk">')
    page = page.replace("\n<div>A &amp; B<br>C</div>", "")
    text = read_report_text(write(tmp_path, "seed.html", page.replace("\xa0", " ").encode("gbk")))
    assert tree_signature(parse_report(text, META)) == seed_tree


def test_html_to_text_basics():
    page = (
        "<p>甲&nbsp;乙  丙\n丁</p><ul><li>一</li><li>二</li></ul>文<br/>字<pre>a  b\nc</pre><style>x</style>"
    )
    assert html_to_text(page) == "甲\xa0乙 丙 丁\n一\n二\n文\n字\na  b\nc\n"
    assert html_to_text("<script>only()</script>") == ""


def test_markdown_with_an_html_comment_is_not_html():
    reg = CORPORA / "regulations" / "law_zhongda_xingzheng_juece_2019.txt"
    text = read_report_text(reg)
    assert "<!-- INFO END -->" in text and not looks_like_html(text)


# ------------------------------------------------------------------------------------ bad input


def assert_corpus_error(path, *words):
    with pytest.raises(CorpusError) as info:
        read_report_text(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    for word in words:
        assert word in message, message
    return message


def test_empty_file(tmp_path):
    assert_corpus_error(write(tmp_path, "empty.txt", b""), "empty")
    assert_corpus_error(write(tmp_path, "blank.txt", b" \r\n\t\n"), "empty")
    assert_corpus_error(write(tmp_path, "bom-only.txt", codecs.BOM_UTF8 + b"\n"), "empty")


def test_binary_junk(tmp_path):
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4
    assert_corpus_error(write(tmp_path, "image.txt", png), "binary")
    controls = bytes([1, 2, 3, 4, 5, 6, 7, 8, 14, 15, 16]) * 50 + "一、标题".encode()
    assert_corpus_error(write(tmp_path, "controls.txt", controls), "binary")


def test_undecodable_bytes(tmp_path):
    data = SEED_TEXT.encode("utf-8")
    cut = len(SEED_TEXT[:100].encode("utf-8"))
    broken = data[:cut] + b"\xff\xfe\xc3" + data[cut:]
    message = assert_corpus_error(write(tmp_path, "broken.txt", broken), "UTF-8", f"offset {cut}")
    assert "damaged" in message
    noise = bytes((i * 7919 + 13) % 128 + 128 for i in range(4000))  # high bytes no encoding explains
    assert_corpus_error(write(tmp_path, "noise.txt", noise), "encoding")


def test_missing_file_and_directory(tmp_path):
    assert_corpus_error(tmp_path / "nope.txt", "not found")
    assert_corpus_error(tmp_path, "directory")


def test_decode_bytes_names_the_source():
    with pytest.raises(CorpusError, match="upload.txt: file is empty"):
        decode_bytes(b"", "upload.txt")
