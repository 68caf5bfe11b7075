"""Mangled report *files* through the whole read path: bytes → decode → (HTML →) parse → validate.

tests/test_parse.py already fuzzes `parse` with strange text and times a 10 MB string; what is
left is the file level, where damage happens to bytes: a file cut at any byte (inside a UTF-8 or
GBK character), UTF-8 and GBK halves glued together, a few bytes flipped, HTML cut off, headings
with no body, 10 MB on one line in each encoding. The promise: `load_report` returns a valid tree
or raises a one-line CorpusError naming the file, in bounded time; never another exception.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import SEED_FILE
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_parse import assert_offsets

from retrieval.corpus import load_report
from retrieval.document import Report, ReportMeta
from retrieval.errors import CorpusError
from retrieval.parse import parse_report

SEED_TEXT = SEED_FILE.read_text(encoding="utf-8")
SEED_UTF8 = SEED_TEXT.encode("utf-8")
SEED_GBK = SEED_TEXT.encode("gb18030")
SEED_HTML = (
    "<!DOCTYPE html><html><head><meta charset='utf-8'><title>报告</title></head><body>"
    + "".join(f"<p>{line}</p>" for line in SEED_TEXT.splitlines())
    + "</body></html>"
).encode("utf-8")
# the seed's outline as bare heading lines ("一、…", "(一)…"), no body text at all
HEADINGS = "\n".join(
    (sec.label if sec.level == 1 else sec.label[len(sec.label.rsplit("(", 1)[0]) :]) + sec.title
    for sec in parse_report(SEED_TEXT, ReportMeta("seed", "seed", "seed.txt")).walk()
    if sec.level >= 1
).encode("utf-8")
PER_FILE_SECONDS = 5.0  # the seed report parses in ~0.05 s; a hang or blow-up shows as far more


def load_bytes(folder: Path, name: str, data: bytes) -> Report | None:
    """The tree, or None after a proper CorpusError; anything else fails the test."""
    path = folder / name
    path.write_bytes(data)
    started = time.perf_counter()
    try:
        report = load_report(folder, ReportMeta(report_id="fuzz", title="模糊测试", file=name))
    except CorpusError as exc:
        message = str(exc)
        assert name in message and "\n" not in message, message
        report = None
    elapsed = time.perf_counter() - started
    assert elapsed < PER_FILE_SECONDS, f"{name}: {len(data)} bytes took {elapsed:.1f}s"
    if report is not None:
        assert_offsets(report)
        assert any(sec.level >= 1 for sec in report.sections)
    return report


@st.composite
def mangled(draw: st.DrawFn) -> tuple[str, bytes]:
    """A damaged copy of the seed report, as a file name and its bytes."""
    kind = draw(st.sampled_from(["truncated", "glued", "flipped", "html-cut", "headings", "spliced"]))
    if kind == "truncated":
        source = draw(st.sampled_from([SEED_UTF8, SEED_GBK, SEED_HTML]))
        return "cut.txt", source[: draw(st.integers(0, len(source)))]
    if kind == "glued":  # the first part re-saved in one encoding, the rest in another
        at = draw(st.integers(0, len(SEED_TEXT)))
        first, second = draw(st.permutations(["utf-8", "gb18030"]))
        return "glued.txt", SEED_TEXT[:at].encode(first) + SEED_TEXT[at:].encode(second)
    if kind == "flipped":
        data = bytearray(draw(st.sampled_from([SEED_UTF8, SEED_GBK])))
        for _ in range(draw(st.integers(1, 20))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        return "flipped.txt", bytes(data)
    if kind == "html-cut":
        return "page.html", SEED_HTML[: draw(st.integers(0, len(SEED_HTML)))]
    if kind == "headings":
        lines = HEADINGS.split(b"\n")
        chosen = draw(st.lists(st.sampled_from(lines), max_size=40))
        return "headings.txt", b"\n".join(chosen)
    # spliced: pieces of the report in random order, with random bytes between them
    pieces = draw(
        st.lists(
            st.one_of(
                st.builds(lambda a, n: SEED_UTF8[a : a + n], st.integers(0, len(SEED_UTF8)), st.integers(0, 400)),
                st.binary(max_size=8),
            ),
            max_size=30,
        )
    )
    return "spliced.txt", b"".join(pieces)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(mangled())
def test_a_damaged_report_file_gives_a_tree_or_a_clear_corpus_error(tmp_path, case):
    name, data = case
    load_bytes(tmp_path, name, data)


@pytest.mark.parametrize(
    ("name", "data", "needle"),
    [
        ("empty.txt", b"", "empty"),
        ("utf8-cut-mid-char.txt", SEED_UTF8[: SEED_UTF8.index("衡".encode()) + 1] + SEED_UTF8[1000:2000], "UTF-8"),
        ("nul.txt", SEED_UTF8[:500] + b"\x00" * 10 + SEED_UTF8[500:], "binary"),
        ("no-body.html", b"<html><body><script>x()</script></body></html>", "shows no text"),
        ("prose.txt", "这是一段没有任何标题的文字。".encode() * 50, "no headings"),
    ],
    ids=["empty", "utf8-cut-mid-char", "nul-bytes", "html-without-text", "no-headings"],
)
def test_known_damage_names_the_problem(tmp_path, name, data, needle):
    (tmp_path / name).write_bytes(data)
    with pytest.raises(CorpusError, match=needle):
        load_report(tmp_path, ReportMeta("x", "x", name))


def test_headings_only_is_a_valid_tree_of_empty_sections(tmp_path):
    report = load_bytes(tmp_path, "headings.txt", HEADINGS)
    assert report is not None
    assert [s.section_id for s in report.sections if s.level == 1] == [str(i) for i in range(1, 8)]
    assert len(list(report.walk())) >= 21 and not any(report.paragraphs())


@pytest.mark.parametrize("encoding", ["utf-8", "gb18030", "html"])
def test_ten_megabytes_on_one_line_is_read_in_bounded_time(tmp_path, encoding):
    body = "".join(SEED_TEXT.split())
    line = (body * (10_000_000 // len(body) + 1))[:10_000_000]
    if encoding == "html":
        data, name = f"<html><body><p>一、标题</p><p>{line}</p></body></html>".encode(), "big.html"
    else:
        data, name = f"一、标题\n{line}".encode(encoding), "big.txt"
    (tmp_path / name).write_bytes(data)
    started = time.perf_counter()
    report = load_report(tmp_path, ReportMeta("big", "大文件", name))
    elapsed = time.perf_counter() - started
    assert elapsed < 20, f"{elapsed:.1f}s"  # ~0.6-2 s on the 2-core dev machine
    assert len(report.section("1").paragraphs[0].text) >= 9_000_000
