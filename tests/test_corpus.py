"""The corpus manifest, discovery of plain directories, loading, and adding/removing reports."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import CORPORA, LONGHUA_FILE, REPO, SEED_FILE

from retrieval import corpus as corpus_mod
from retrieval.corpus import (
    add_report,
    content_hash,
    discover,
    load_corpus,
    load_manifest,
    load_report,
    meta_from_file,
    region_of,
    remove_report,
)
from retrieval.document import ReportMeta
from retrieval.errors import CorpusError

CORPUS = REPO / "corpus"
GOV = CORPORA / "gov-work-reports"
MENU_ONLY_PAGE = "2021年坪山区政府工作报告_2021.txt"  # a saved web page holding only the site's menus


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    """A writable copy of the repository corpus (manifest + seed)."""
    target = tmp_path / "corpus"
    target.mkdir()
    shutil.copy(CORPUS / "reports.toml", target / "reports.toml")
    shutil.copy(SEED_FILE, target / SEED_FILE.name)
    return target


def error_of(fn, *args, **kwargs) -> str:
    with pytest.raises(CorpusError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


# ------------------------------------------------------------------------------------- manifest


def test_repo_manifest():
    (meta,) = load_manifest(CORPUS)
    assert meta == ReportMeta(
        report_id="hengyang-2019-fazhi",
        title="衡阳市2019年度法治政府建设情况报告",
        file="hengyang-2019-fazhi-zhengfu-report.txt",
        issuer="衡阳市人民政府",
        publisher="市司法局",
        signed="2020-03-17",
        published="2020-03-27",
        year=2019,
        region="衡阳市",
        source_url="https://www.hengyang.gov.cn/xxgk/dtxx/tzgg/gsgg/20200402/i1914998.html",
        kind="法治政府建设情况报告",
    )
    assert discover(CORPUS) == [meta]


def write_manifest(directory: Path, body: str) -> Path:
    path = directory / "reports.toml"
    path.write_text(body, encoding="utf-8")
    return path


def test_malformed_toml(corpus_dir):
    path = write_manifest(corpus_dir, '[[report]]\nid = "a"\nfile = \n')
    message = error_of(load_manifest, corpus_dir)
    assert str(path) in message and "malformed TOML" in message


@pytest.mark.parametrize("missing", ["id", "file", "title"])
def test_missing_required_field(corpus_dir, missing):
    fields = {"id": '"seed"', "file": f'"{SEED_FILE.name}"', "title": '"衡阳"'}
    del fields[missing]
    write_manifest(corpus_dir, "[[report]]\n" + "".join(f"{k} = {v}\n" for k, v in fields.items()))
    message = error_of(load_manifest, corpus_dir)
    assert "reports.toml" in message and f"missing required field {missing!r}" in message
    assert ("entry 'seed'" if missing != "id" else "entry 1") in message


def test_duplicate_ids(corpus_dir):
    entry = f'[[report]]\nid = "seed"\nfile = "{SEED_FILE.name}"\ntitle = "衡阳"\n'
    write_manifest(corpus_dir, entry + "\n" + entry)
    message = error_of(load_manifest, corpus_dir)
    assert "reports.toml" in message and "duplicate report id 'seed'" in message


def test_manifest_pointing_at_a_missing_file(corpus_dir):
    write_manifest(corpus_dir, '[[report]]\nid = "gone"\nfile = "gone.txt"\ntitle = "不存在"\n')
    message = error_of(load_manifest, corpus_dir)
    assert "reports.toml" in message and "'gone'" in message and "gone.txt" in message


@pytest.mark.parametrize(
    "extra,words",
    [
        ('signed = "17.3.2020"', "signed must be an ISO date"),
        ('year = "2019"', "year must be a 4-digit integer"),
        ('tilte = "x"', "unknown field(s) tilte"),
        ('file2 = "x"', "unknown field(s) file2"),
    ],
)
def test_bad_field_values(corpus_dir, extra, words):
    write_manifest(
        corpus_dir, f'[[report]]\nid = "seed"\nfile = "{SEED_FILE.name}"\ntitle = "衡阳"\n{extra}\n'
    )
    assert words in error_of(load_manifest, corpus_dir)


def test_toml_dates_and_paths(corpus_dir):
    write_manifest(
        corpus_dir,
        f'[[report]]\nid = "seed"\nfile = "{SEED_FILE.name}"\ntitle = "衡阳"\nsigned = 2020-03-17\n',
    )
    assert load_manifest(corpus_dir)[0].signed == "2020-03-17"
    write_manifest(corpus_dir, '[[report]]\nid = "seed"\nfile = "../seed.txt"\ntitle = "衡阳"\n')
    assert "inside the corpus directory" in error_of(load_manifest, corpus_dir)


# ------------------------------------------------------------------------------------- discover


def test_discover_a_directory_without_manifest():
    metas = {m.report_id: m for m in discover(GOV)}
    assert len(metas) == len(list(GOV.glob("*.txt")))
    longhua = metas[LONGHUA_FILE.stem]
    assert longhua.title == "深圳市龙华区2019年法治政府建设工作报告"
    assert (longhua.year, longhua.region, longhua.kind, longhua.file) == (
        2019, "龙华区", "法治政府建设情况报告", LONGHUA_FILE.name
    )
    state = metas["国务院政府工作报告_2020年"]
    assert (state.title, state.year, state.region, state.kind) == ("国务院政府工作报告", 2020, "国务院", "政府工作报告")
    assert metas["大鹏新区管委会2014年工作报告_2015"].year == 2014  # the title's year wins over the file suffix
    assert metas["大鹏新区管委会2014年工作报告_2015"].kind == "政府工作报告"
    assert metas["南山区政府工作报告（2021年10月17日）_2021"].published == "2021-10-17"
    assert metas["广东省政府工作报告_2014年"].region == "广东省"
    assert metas["2021年龙华区二届人大一次会议政府工作报告_2021"].region == "龙华区"
    luohu = metas["2014年政府工作报告（在深圳市罗湖区第六届人民代表大会第三次会议上）_2014"]
    assert (luohu.title, luohu.region) == (
        "2014年政府工作报告（在深圳市罗湖区第六届人民代表大会第三次会议上）",
        "罗湖区",  # the most specific place the title names
    )
    baoan = metas["深圳市宝安区人民政府区长王立德在深圳市宝安区第七届人民代表大会第三次会议上作政府工作报告_2023"]
    assert (baoan.region, baoan.year) == ("宝安区", 2023)


def test_discover_uses_title_comments():
    metas = {m.report_id: m for m in discover(CORPORA / "regulations")}
    assert metas["law_zhongda_xingzheng_juece_2019"].title == "重大行政决策程序暂行条例（国务院令第713号）"
    assert metas["law_zhongda_xingzheng_juece_2019"].year == 2019
    assert metas["law_zhongda_xingzheng_juece_2019"].kind == "条例"
    (hunan,) = discover(CORPORA / "provincial")
    assert hunan.title.startswith("2026年湖南省政府工作报告") and hunan.region == "湖南省"


def test_meta_from_file_and_region(tmp_path):
    path = tmp_path / "大鹏新区2023年管理委员会工作报告_2023.html"
    path.write_text("<p>x</p>", encoding="utf-8")
    meta = meta_from_file(path, tmp_path)
    assert (meta.report_id, meta.title, meta.year, meta.region) == (
        "大鹏新区2023年管理委员会工作报告_2023",
        "大鹏新区2023年管理委员会工作报告",
        2023,
        "大鹏新区",
    )
    assert region_of("2023年南山区政府工作报告") == "南山区"
    assert region_of("国务院政府工作报告") == "国务院"
    assert region_of("深圳市龙华区2019年法治政府建设工作报告") == "龙华区"
    assert region_of("关于印发某某办法的通知") is None


def test_discover_missing_directory(tmp_path):
    assert "not found" in error_of(discover, tmp_path / "nope")


# ----------------------------------------------------------------------------------------- load


def test_load_corpus_across_directories():
    reports = load_corpus([CORPUS, CORPORA / "regulations", CORPORA / "provincial"])
    assert [r.meta.report_id for r in reports][0] == "hengyang-2019-fazhi"
    assert len(reports) == 5
    assert reports[0].meta.title == "衡阳市2019年度法治政府建设情况报告"
    assert len([s for s in reports[0].sections if s.level == 1]) == 7


def test_gov_work_reports_load_except_the_menu_only_page():
    message = error_of(load_corpus, [GOV])
    assert MENU_ONLY_PAGE in message and "no headings found (expected 一、/(一)/第X章/第X条/# …)" in message
    reports = load_corpus([GOV], skip_invalid=True)
    assert len(reports) == len(list(GOV.glob("*.txt"))) - 1
    assert MENU_ONLY_PAGE[:-4] not in {r.meta.report_id for r in reports}
    assert all(any(s.level == 1 for s in r.sections) for r in reports)


def test_ids_must_be_unique_across_directories(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        shutil.copy(SEED_FILE, tmp_path / name / "same.txt")
    message = error_of(load_corpus, [tmp_path / "a", tmp_path / "b"])
    assert "duplicate report id 'same'" in message and str(tmp_path / "a") in message


def test_report_without_headings_is_a_corpus_error(tmp_path):
    (tmp_path / "plain.txt").write_text("只有一段话，没有任何标题。\n第二段。\n", encoding="utf-8")
    (meta,) = discover(tmp_path)
    message = error_of(load_report, tmp_path, meta)
    assert str(tmp_path / "plain.txt") in message
    assert message.endswith("no headings found (expected 一、/(一)/第X章/第X条/# …)")


def test_content_hash(tmp_path):
    path = tmp_path / "x.txt"
    path.write_bytes(b"abc")
    assert content_hash(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    path.write_bytes(b"abd")
    assert content_hash(path) != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert "cannot read" in error_of(content_hash, tmp_path / "missing.txt")


# ------------------------------------------------------------------------------- add and remove


def test_add_report_from_outside(corpus_dir):
    before = (corpus_dir / "reports.toml").read_text(encoding="utf-8")
    meta = add_report(corpus_dir, LONGHUA_FILE, issuer="深圳市龙华区人民政府")
    assert meta.report_id == LONGHUA_FILE.stem
    assert meta.file == LONGHUA_FILE.name
    assert meta.title == "深圳市龙华区2019年法治政府建设工作报告"
    assert (meta.signed, meta.year, meta.region, meta.kind, meta.issuer) == (
        "2019-12-18",
        2019,
        "龙华区",
        "法治政府建设情况报告",
        "深圳市龙华区人民政府",
    )
    assert (corpus_dir / LONGHUA_FILE.name).read_bytes() == LONGHUA_FILE.read_bytes()
    after = (corpus_dir / "reports.toml").read_text(encoding="utf-8")
    assert after.startswith(before.split("[[report]]")[0])  # the header comments are kept
    assert [m.report_id for m in load_manifest(corpus_dir)] == ["hengyang-2019-fazhi", LONGHUA_FILE.stem]
    assert load_manifest(corpus_dir)[0] == load_manifest(CORPUS)[0]
    assert len(load_corpus([corpus_dir])) == 2
    assert not [p for p in corpus_dir.iterdir() if p.name.startswith(".reportqa-")]


def test_add_report_with_explicit_metadata(corpus_dir, tmp_path):
    src = tmp_path / "new.md"
    src.write_text("# 某县2024年工作报告\n\n## 一、总体情况\n\n工作顺利完成。\n", encoding="utf-8")
    meta = add_report(corpus_dir, src, title="某县报告", date="2024-12-31", report_id="mouxian-2024")
    assert (meta.report_id, meta.title, meta.signed, meta.file) == (
        "mouxian-2024",
        "某县报告",
        "2024-12-31",
        "new.md",
    )
    assert load_manifest(corpus_dir)[-1] == meta


def test_add_report_failures_leave_the_manifest_byte_identical(corpus_dir, tmp_path):
    manifest = corpus_dir / "reports.toml"
    before = manifest.read_bytes()
    files_before = sorted(p.name for p in corpus_dir.iterdir())

    plain = tmp_path / "plain.txt"
    plain.write_text("只有一段话，没有任何标题。\n", encoding="utf-8")
    assert "no headings found" in error_of(add_report, corpus_dir, plain)
    binary = tmp_path / "junk.txt"
    binary.write_bytes(b"\x00\x01\x02" * 100)
    assert "binary" in error_of(add_report, corpus_dir, binary)
    assert "ISO date" in error_of(add_report, corpus_dir, LONGHUA_FILE, date="2019/12/18")
    assert "already listed" in error_of(add_report, corpus_dir, LONGHUA_FILE, report_id="hengyang-2019-fazhi")
    assert "not found" in error_of(add_report, corpus_dir, tmp_path / "missing.txt")
    assert "already listed" in error_of(add_report, corpus_dir, corpus_dir / SEED_FILE.name)

    assert manifest.read_bytes() == before
    assert sorted(p.name for p in corpus_dir.iterdir()) == files_before


def test_add_report_write_failure_rolls_back(corpus_dir, monkeypatch):
    manifest = corpus_dir / "reports.toml"
    before = manifest.read_bytes()
    real_replace = os.replace

    def failing_replace(src, dst):
        if Path(dst).name == "reports.toml":
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(corpus_mod.os, "replace", failing_replace)
    message = error_of(add_report, corpus_dir, LONGHUA_FILE)
    assert "reports.toml" in message and "nothing was changed" in message
    assert manifest.read_bytes() == before
    assert sorted(p.name for p in corpus_dir.iterdir()) == sorted([SEED_FILE.name, "reports.toml"])


def test_add_report_to_a_directory_without_manifest(tmp_path):
    shutil.copy(SEED_FILE, tmp_path / "seed.txt")
    meta = add_report(tmp_path, LONGHUA_FILE)
    ids = [m.report_id for m in load_manifest(tmp_path)]
    assert ids == ["seed", meta.report_id]  # the files already there stay in the corpus
    assert (tmp_path / "reports.toml").read_text(encoding="utf-8").startswith("# The report corpus.")


def test_remove_report(corpus_dir):
    add_report(corpus_dir, LONGHUA_FILE)
    removed = remove_report(corpus_dir, LONGHUA_FILE.stem)
    assert removed.report_id == LONGHUA_FILE.stem
    assert [m.report_id for m in load_manifest(corpus_dir)] == ["hengyang-2019-fazhi"]
    assert (corpus_dir / LONGHUA_FILE.name).exists()  # the file stays unless asked
    assert "no report with id 'nope'" in error_of(remove_report, corpus_dir, "nope")
    remove_report(corpus_dir, "hengyang-2019-fazhi", delete_file=True)
    assert load_manifest(corpus_dir) == [] and not (corpus_dir / SEED_FILE.name).exists()


def test_remove_from_a_directory_without_manifest(tmp_path):
    shutil.copy(SEED_FILE, tmp_path / "seed.txt")
    assert "has no reports.toml" in error_of(remove_report, tmp_path, "seed")


# --- the parse cache ------------------------------------------------------------------------


def _load_counting_parses(corpus: Path, cache: Path, monkeypatch: pytest.MonkeyPatch):
    from retrieval import parse as parse_mod

    parsed: list[str] = []
    real = parse_mod.parse_report

    def counting(text, meta):
        parsed.append(meta.report_id)
        return real(text, meta)

    monkeypatch.setattr(parse_mod, "parse_report", counting)
    return corpus_mod.load_corpus([corpus], parsed_cache=cache, skip_invalid=True), parsed


def test_parse_cache_serves_unchanged_reports_and_never_a_stale_one(seed_corpus, tmp_path, monkeypatch):
    from conftest import tree_signature

    cache = tmp_path / "parsed"
    (first,), parsed = _load_counting_parses(seed_corpus, cache, monkeypatch)
    assert parsed == ["hengyang-2019-fazhi"] and len(list(cache.glob("*.pickle"))) == 1
    (again,), parsed = _load_counting_parses(seed_corpus, cache, monkeypatch)
    assert parsed == [] and tree_signature(again) == tree_signature(first) and again.text == first.text

    # The file changes: parsed afresh, the new figure is what the report holds.
    path = seed_corpus / "hengyang-2019-fazhi-zhengfu-report.txt"
    path.write_text(path.read_text(encoding="utf-8").replace("17076", "17077"), encoding="utf-8")
    (edited,), parsed = _load_counting_parses(seed_corpus, cache, monkeypatch)
    assert parsed == ["hengyang-2019-fazhi"] and "17077" in edited.text and "17076" not in edited.text

    # The manifest entry changes (a new title): parsed afresh with the new metadata.
    manifest = seed_corpus / "reports.toml"
    text = manifest.read_text(encoding="utf-8")
    assert 'title = "衡阳市2019年度法治政府建设情况报告"' in text
    manifest.write_text(text.replace('title = "衡阳市2019年度法治政府建设情况报告"',
                                     'title = "衡阳市2019年度法治政府建设报告"'), encoding="utf-8")
    (retitled,), parsed = _load_counting_parses(seed_corpus, cache, monkeypatch)
    assert parsed == ["hengyang-2019-fazhi"] and retitled.meta.title != edited.meta.title


def test_a_damaged_parse_cache_entry_is_parsed_again(seed_corpus, tmp_path, monkeypatch):
    cache = tmp_path / "parsed"
    (first,), _ = _load_counting_parses(seed_corpus, cache, monkeypatch)
    (entry,) = cache.glob("*.pickle")
    raw = bytearray(entry.read_bytes())
    raw[-20] ^= 0xFF
    entry.write_bytes(bytes(raw))
    (again,), parsed = _load_counting_parses(seed_corpus, cache, monkeypatch)
    assert parsed == ["hengyang-2019-fazhi"] and again.text == first.text
    (_,), parsed = _load_counting_parses(seed_corpus, cache, monkeypatch)
    assert parsed == []  # rewritten whole


def test_parser_code_is_part_of_the_parse_cache_key(monkeypatch):
    from retrieval import parse_cache
    from retrieval.corpus import discover

    meta = discover(REPO / "corpus")[0]
    data = (REPO / "corpus" / meta.file).read_bytes()
    before = parse_cache.parsed_key(meta, data)
    monkeypatch.setattr(parse_cache, "producer_code_hash", lambda: "another parser")
    assert parse_cache.parsed_key(meta, data) != before


def test_a_report_that_does_not_parse_is_not_parsed_again_until_it_changes(tmp_path, monkeypatch, caplog):
    corpus, cache = tmp_path / "plain", tmp_path / "parsed"  # no manifest: every file is a report
    corpus.mkdir()
    shutil.copy(SEED_FILE, corpus / "seed.txt")
    bad = corpus / "notes.txt"
    bad.write_text("会议纪要\n\n没有任何标题的一段文字。\n", encoding="utf-8")

    def load():
        caplog.clear()
        with caplog.at_level("WARNING"):
            reports, parsed = _load_counting_parses(corpus, cache, monkeypatch)
        warned = [r.getMessage() for r in caplog.records if "notes.txt" in r.getMessage()]
        return [r.meta.report_id for r in reports], sorted(parsed), warned

    ids, parsed, warned = load()
    assert ids == ["seed"] and parsed == ["notes", "seed"] and "no headings" in warned[0]
    assert load() == (["seed"], [], warned)  # the same warning, from the cache: nothing parsed
    bad.write_text("会议纪要\n\n一、总体情况\n\n全年共办理议案12件。\n", encoding="utf-8")
    ids, parsed, warned = load()
    assert sorted(ids) == ["notes", "seed"] and parsed == ["notes"] and warned == []


def test_the_parse_cache_stores_reports_whole():
    """pack/unpack give an equal report for real reports (text, PDF, DOCX), and know every field of
    the document model: a field added to it must be stored too."""
    from dataclasses import fields

    from retrieval import parse_cache
    from retrieval.document import Paragraph, Report, Section, Sentence
    from retrieval.parse import parse_report
    from retrieval.sources import read_report_text

    assert [f.name for f in fields(Report)] == ["meta", "text", "sections", "signed_date", "parsed_title",
                                                "source_key"]  # source_key: set by the loader, not stored
    assert [f.name for f in fields(Section)] == ["section_id", "label", "title", "level", "start", "end",
                                                 "paragraphs", "children"]
    assert [f.name for f in fields(Paragraph)] == ["text", "start", "end", "sentences", "section_id", "index"]
    assert [f.name for f in fields(Sentence)] == ["text", "start", "end"]
    published = REPO / "tests" / "fixtures" / "published"
    files = [SEED_FILE, LONGHUA_FILE, published / "pingshan-2019.pdf", published / "longhua-2019-fazhi.docx"]
    for path in files:
        report = parse_report(read_report_text(path), ReportMeta(report_id="r", title=path.stem, file=path.name))
        again = parse_cache.unpack(parse_cache.pack(report))
        assert again == report and again.text == report.text, path.name
        assert [s.text for p in again.paragraphs() for s in p.sentences] == [
            s.text for p in report.paragraphs() for s in p.sentences]
    # A paragraph whose text is not its slice of the report text is kept as it is.
    report = parse_report(SEED_FILE.read_text(encoding="utf-8"), ReportMeta(report_id="r", title="t", file="f"))
    para = next(report.paragraphs())
    para.text = para.text + "（补）"
    assert next(parse_cache.unpack(parse_cache.pack(report)).paragraphs()).text == para.text
