"""parse_report: the section tree of the seed, real corpus files and edge cases (pure, no I/O but reading)."""

from __future__ import annotations

import time

import pytest
from conftest import CORPORA, LONGHUA_FILE, SEED_FILE, tree_signature
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retrieval.document import Report, ReportMeta
from retrieval.parse import (
    PARSER_VERSION,
    WS,
    cn_to_int,
    normalize_text,
    parse_date,
    parse_report,
    split_sentences,
)
from retrieval.sources import read_report_text

META = ReportMeta(report_id="t", title="t", file="t.txt")
REGULATION = CORPORA / "regulations" / "law_zhengfu_xinxi_gongkai_2019.txt"
REGULATION_WITH_SECTIONS = CORPORA / "regulations" / "law_zhongda_xingzheng_juece_2019.txt"
PROVINCIAL = CORPORA / "provincial" / "gwr_hunan_province_2026.txt"


def parse(text: str) -> Report:
    return parse_report(text, META)


def parse_file(path) -> Report:
    return parse_report(read_report_text(path), META)


def assert_offsets(report: Report) -> None:
    """Every paragraph, sentence and heading points at its own text in Report.text."""
    text = report.text
    for sec in report.walk():
        assert 0 <= sec.start <= sec.end <= len(text)
        for i, para in enumerate(sec.paragraphs):
            assert text[para.start : para.end] == para.text
            assert para.text.strip() == para.text and para.text
            assert para.section_id == sec.section_id and para.index == i
            assert sec.start <= para.start and para.end <= sec.end
            pos = para.start
            for sent in para.sentences:
                assert text[sent.start : sent.end] == sent.text and sent.text.strip() == sent.text
                assert pos <= sent.start and not text[pos : sent.start].strip(WS)  # only whitespace between
                pos = sent.end
            assert pos == para.end and para.sentences
        for child in sec.children:
            assert sec.start <= child.start and child.end <= sec.end
            assert child.level == sec.level + 1
    ids = [sec.section_id for sec in report.walk()]
    assert len(ids) == len(set(ids)), "section ids must be unique"


def outline(report: Report) -> list[tuple[str, str, str, int]]:
    return [(s.section_id, s.label, s.title, s.level) for s in report.walk()]


# ------------------------------------------------------------------------------------------- seed


@pytest.fixture(scope="module")
def seed() -> Report:
    return parse_file(SEED_FILE)


def test_parser_version_is_a_string():
    assert isinstance(PARSER_VERSION, str) and PARSER_VERSION


def test_seed_has_seven_chapters_and_21_sections(seed):
    chapters = [s for s in seed.sections if s.level == 1]
    assert [c.section_id for c in chapters] == ["1", "2", "3", "4", "5", "6", "7"]
    sections = [s for s in seed.walk() if s.level == 2]
    assert len(sections) == 21
    assert all(len(c.children) == 3 for c in chapters)
    assert not [s for s in seed.walk() if s.level >= 3]


def test_seed_titles_labels_and_ids(seed):
    assert (
        seed.section("1").title == "坚持加强领导,切实强化法治政府建设组织推进"
    )  # ASCII comma, as in the file
    assert seed.section("1").label == "一、"
    assert seed.section("1.1").title == "健全法治政府建设工作机制"
    assert seed.section("1.1").label == "一、(一)"
    assert seed.section("5.1").title == "紧扣“三项制度”,优化执法程序建设"
    assert seed.section("7").title == "坚持维护稳定,依法有效化解社会矛盾"
    assert seed.section("7.1").title == "推行多元化解机制"
    assert seed.section("7.1").label == "七、(一)"
    assert seed.section("7.3").title == "严格确保行政复议和应诉办案质量"


def test_seed_run_in_heading_is_not_part_of_the_paragraph(seed):
    para = seed.section("1.1").paragraphs[0]
    assert para.text.startswith("市委、市政府高度重视法治政府建设工作")
    assert "健全法治政府建设工作机制" not in para.text
    first = seed.section("7.1").paragraphs[0]
    assert first.text.startswith("全市184个乡镇(街道)实现人民调解委员会全覆盖")
    assert first.sentences[0].text.endswith("。")
    assert seed.section("1").paragraphs == []  # a heading line without body has no paragraph


def test_seed_preamble_holds_the_introduction(seed):
    pre = seed.sections[0]
    assert (pre.section_id, pre.label, pre.title, pre.level) == ("0", "", "前言", 0)
    assert len(pre.paragraphs) == 1
    assert "现将有关情况汇报如下" in pre.paragraphs[0].text
    assert pre.paragraphs[0].text.startswith("2019年,我市坚持以习近平新时代中国特色社会主义思想为指导")


def test_seed_page_chrome_is_stripped(seed):
    texts = [p.text for p in seed.paragraphs()]
    for junk in ("浏览量", "扫一扫", "相关阅读", "当前位置", "字体", "发布时间"):
        assert not any(junk in t for t in texts), junk
    assert "衡阳市人民政府" not in texts  # the signature line (the name itself occurs in the text)
    assert not any(t.startswith("衡阳市人民政府") for t in texts)
    assert not any(t.startswith("2020年3月17日") for t in texts)
    assert seed.parsed_title == "衡阳市2019年度法治政府建设情况报告"
    assert seed.signed_date == "2020-03-17"
    assert seed.section("7.3").paragraphs[-1].text.endswith("。")


def test_seed_offsets_round_trip(seed):
    assert_offsets(seed)
    sec = seed.section("7.1")
    assert seed.text[sec.start :].startswith("(一)推行多元化解机制。")
    assert seed.section("7").end == seed.section("7.3").end


def test_seed_sentences(seed):
    para = seed.section("1.2").paragraphs[0]
    assert [s.text[-1] for s in para.sentences] == ["。"] * len(para.sentences)
    assert (
        para.sentences[0].text == "市委邓群策书记在法制日报撰文推介衡阳行政执法“三项制度”和法治政府建设经验。"
    )


# ---------------------------------------------------------------------------------- real corpora


def test_longhua_structure():
    rep = parse_file(LONGHUA_FILE)
    assert_offsets(rep)
    chapters = [s for s in rep.sections if s.level == 1]
    assert len(chapters) == 8
    assert [len(c.children) for c in chapters] == [0, 0, 3, 3, 0, 4, 3, 4]
    assert rep.section("1").title == "积极统筹部署和指导监督，高效推进法治政府建设"
    assert rep.section("3.1").title == "加强规范性文件管理"
    assert rep.section("6.4").title == "畅通执法投诉渠道，依法接受群众监督"
    assert rep.section("6.4").label == "六、(四)"
    assert rep.section("8").title == "2020年法治政府建设工作计划"
    # chapter 7 has an opening paragraph of its own before its (一)…(三)
    assert rep.section("7").paragraphs[0].text.startswith("积极开展行政复议和行政应诉工作，有效解决行政争议")
    assert rep.sections[0].paragraphs[0].text == "现将有关情况报告如下："
    assert rep.signed_date == "2019-12-18"
    assert not any(p.text == "深圳市龙华区人民政府" for p in rep.paragraphs())


def test_regulation_chapters_and_articles():
    rep = parse_file(REGULATION)
    assert_offsets(rep)
    assert rep.parsed_title == "中华人民共和国政府信息公开条例（2019年修订，国务院令第711号）"
    chapters = [s for s in rep.sections if s.level == 1]
    assert [c.title for c in chapters] == [
        "总则",
        "公开的主体和范围",
        "主动公开",
        "依申请公开",
        "监督和保障",
        "附则",
    ]
    assert chapters[1].label == "第二章"
    art = rep.section("2.10")
    assert art is not None and art.label == "第二章 第十条" and art.title == ""
    assert art.paragraphs[0].text.startswith("行政机关制作的政府信息，由制作该政府信息的行政机关负责公开。")
    assert rep.section("1.1").label == "第一章 第一条"
    articles = [s for s in rep.walk() if s.label.endswith("条")]
    assert len(articles) == 56
    # numbered items inside an article are paragraphs of the article, not sections
    art20 = rep.section("3.20")
    assert art20.children == [] and any(p.text.startswith("(一)") for p in art20.paragraphs)
    # the Markdown H1 title, the `# source:` comment and `<!-- INFO END -->` are not content
    texts = [p.text for p in rep.paragraphs()]
    assert not any(t.startswith("#") or "INFO END" in t for t in texts)
    assert rep.sections[0].section_id == "0" and "国务院令第711号修订" in rep.sections[0].paragraphs[1].text


def test_regulation_with_sections_nests_them():
    rep = parse_file(REGULATION_WITH_SECTIONS)
    assert_offsets(rep)
    assert rep.section("2.1").label == "第二章 第一节" and rep.section("2.1").title == "决策启动"
    assert rep.section("2.1.10").label == "第二章 第一节 第十条"
    assert rep.section("1.3").label == "第一章 第三条"  # chapter 1 has no 节: articles directly under it
    assert len(rep.section("1.3").paragraphs) == 8


def test_provincial_report_chrome_and_title():
    rep = parse_file(PROVINCIAL)
    assert_offsets(rep)
    assert rep.parsed_title.startswith("2026年湖南省政府工作报告")
    texts = [p.text for p in rep.paragraphs()]
    for junk in ("下载", "打印", "全屏", "收藏", "加大", "减小", "来源：湖南日报", "相关报道"):
        assert junk not in texts
    assert not any(t.endswith(" 摄") or t.startswith("——2026年2月3日") for t in texts)
    assert rep.sections[0].paragraphs[0].text == "各位代表："
    assert [s.title for s in rep.sections if s.level == 1][:2] == [
        "2025年和“十四五”时期工作回顾",
        "“十五五”时期主要目标任务",
    ]
    assert rep.section("3.10").title == "牢牢守住安全稳定底线"


@pytest.mark.parametrize("path", sorted(p for p in CORPORA.glob("*/*.txt")), ids=lambda p: p.name[:30])
def test_every_corpus_file_parses(path):
    rep = parse_file(path)
    assert_offsets(rep)
    chapters = [s for s in rep.sections if s.level == 1]
    paragraphs = list(rep.paragraphs())
    if any("。" in p.text for p in paragraphs):
        assert 1 <= len(chapters) <= 40, len(chapters)
        assert len(paragraphs) >= 10
    else:  # a saved web page with only its menus: no report in it (rejected by corpus validation)
        assert chapters == []
    for sec in rep.walk():
        assert sec.level <= 6
        assert "扫一扫在手机打开当前页" not in "".join(p.text for p in sec.paragraphs)


# ------------------------------------------------------------------------------------ structures


def test_top_level_paren_numbering_becomes_level_one():
    rep = parse("前言一句。\n（一）第一部分。正文一。\n1.细目甲。内容。\n（二）第二部分。正文二。\n")
    assert outline(rep) == [
        ("0", "", "前言", 0),
        ("1", "(一)", "第一部分", 1),
        ("1.1", "(一)1.", "细目甲", 2),
        ("2", "(二)", "第二部分", 1),
    ]
    assert_offsets(rep)


def test_regulation_without_chapters_has_articles_at_level_one():
    rep = parse(
        "第一条 为了规范管理，制定本办法。\n第二条 本办法适用于全市。\n（一）第一项；\n（二）第二项。\n"
    )
    assert outline(rep) == [("1", "第一条", "", 1), ("2", "第二条", "", 1)]
    assert [p.text for p in rep.section("2").paragraphs] == [
        "本办法适用于全市。",
        "（一）第一项；",
        "（二）第二项。",
    ]
    assert rep.section("1").paragraphs[0].text == "为了规范管理，制定本办法。"


def test_article_with_bracketed_gist():
    rep = parse("第一条【立法目的】为了规范管理，制定本条例。\n")
    sec = rep.section("1")
    assert sec.title == "立法目的" and sec.paragraphs[0].text == "为了规范管理，制定本条例。"
    assert_offsets(rep)


def test_markdown_headings():
    rep = parse(
        "# 某某办法\n\n引言一句。\n\n## 总则\n\n内容一。\n\n### 细则\n\n内容二。\n\n## 附则\n\n内容三。\n"
    )
    assert rep.parsed_title == "某某办法"
    assert outline(rep) == [
        ("0", "", "前言", 0),
        ("1", "", "总则", 1),
        ("1.1", "", "细则", 2),
        ("2", "", "附则", 1),
    ]
    assert_offsets(rep)


def test_markdown_heading_with_chapter_marker():
    rep = parse("## 第三章 监督\n\n第九条 应当监督。\n")
    assert outline(rep) == [("3", "第三章", "监督", 1), ("3.9", "第三章 第九条", "", 2)]


def test_yishi_erShi_runs_are_not_headings_and_split_on_semicolon():
    rep = parse(
        "一、总体要求\n一是加强领导，压实责任；二是完善制度；三是强化监督。\n二是开头的一行也不是标题。\n"
    )
    assert outline(rep) == [("1", "一、", "总体要求", 1)]
    first, second = rep.section("1").paragraphs
    assert [s.text for s in first.sentences] == [
        "一是加强领导，压实责任；",
        "二是完善制度；",
        "三是强化监督。",
    ]
    assert second.text == "二是开头的一行也不是标题。"


def test_numerals_that_are_not_markers():
    rep = parse("一、二季度经济平稳。\n1.5亿元投入使用。\n3、4月份完成验收。\n2019年工作回顾。\n")
    assert [s for s in rep.walk() if s.level >= 1] == []
    assert len(rep.sections[0].paragraphs) == 4


def test_arabic_and_circled_markers():
    rep = parse("一、任务\n（1）甲项。内容。\n（2）乙项。内容。\n①细目。内容。\n2．2015年完成情况\n")
    assert outline(rep) == [
        ("1", "一、", "任务", 1),
        ("1.1", "一、(1)", "甲项", 2),
        ("1.2", "一、(2)", "乙项", 2),
        ("1.2.1", "一、(2)①", "细目", 3),
        ("1.2.1.2", "一、(2)①2.", "2015年完成情况", 4),
    ]


def test_repeated_numbers_are_disambiguated():
    rep = parse("一、甲\n（一）子一。内容。\n（一）子一再次。内容。\n一、甲再次\n（一）子。内容。\n")
    assert [s.section_id for s in rep.walk()] == ["1", "1.1", "1.1~2", "1~2", "1~2.1"]


def test_run_in_title_rules():
    long_line = "（四）" + "坚持以人民为中心的发展思想，" + "持续推进各项工作落实落细落到位" * 5
    rep = parse(
        "（一）健全工作机制。市委高度重视。\n"
        "（二）坚持加强领导，切实强化组织推进\n"
        "（三）围产儿：指妊娠第28周后出生的小儿。\n" + long_line + "\n"
    )
    assert rep.section("1").title == "健全工作机制"
    assert rep.section("1").paragraphs[0].text == "市委高度重视。"
    assert rep.section("2").title == "坚持加强领导，切实强化组织推进"
    assert rep.section("2").paragraphs == []
    assert rep.section("3").title == "围产儿"
    assert rep.section("3").paragraphs[0].text == "指妊娠第28周后出生的小儿。"
    sec4 = rep.section("4")
    assert sec4.title == "坚持以人民为中心的发展思想"
    assert sec4.paragraphs[0].text == long_line[3:]  # nothing of a long line is lost
    assert_offsets(rep)


def test_unnumbered_headings_sit_at_top_level():
    rep = parse(
        "各位代表：\n现在我代表区政府报告工作。\n2013年工作回顾\n一、经济发展\n经济平稳增长，总量再创新高。\n"
        "2014年工作安排\n一、稳增长\n继续扩大有效投资，推动经济平稳健康发展。\n"
    )
    assert outline(rep) == [
        ("0", "", "前言", 0),
        ("1", "", "2013年工作回顾", 1),
        ("1.1", "一、", "经济发展", 2),
        ("2", "", "2014年工作安排", 1),
        ("2.1", "一、", "稳增长", 2),
    ]


def test_table_cells_are_not_unnumbered_headings():
    rep = parse(
        "一、民生实事\n“活力100”免费游泳\n文体中心牵头办理\n增加开放时段，实施冬泳免费开放，扩大免费对象，惠及更多市民群众。\n"
    )
    assert outline(rep) == [("1", "一、", "民生实事", 1)]
    assert len(rep.section("1").paragraphs) == 3


def test_blank_and_duplicate_lines():
    rep = parse("一、标题\n\n\n   \n内容一句。\n内容一句。\n\u3000\u3000内容二句。\n内容一句。\n")
    assert [p.text for p in rep.section("1").paragraphs] == ["内容一句。", "内容二句。", "内容一句。"]
    assert [p.index for p in rep.section("1").paragraphs] == [0, 1, 2]


def test_sentences_keep_closing_quotes_and_brackets():
    sents = split_sentences("他说：“做好工作。”随后离开！（完成。）真的吗？是的")
    assert [s.text for s in sents] == ["他说：“做好工作。”", "随后离开！", "（完成。）", "真的吗？", "是的"]
    sents = split_sentences("  甲。  乙。 ", offset=10)
    assert [(s.text, s.start, s.end) for s in sents] == [("甲。", 12, 14), ("乙。", 16, 18)]


def test_crlf_and_bom_are_normalised():
    plain = "一、标题\n（一）小标题。正文。\n"
    rep = parse("\ufeff" + plain.replace("\n", "\r\n"))
    assert rep.text == plain
    assert tree_signature(rep) == tree_signature(parse(plain))
    assert tree_signature(parse(plain.replace("\n", "\r"))) == tree_signature(parse(plain))


def test_no_headings_gives_a_preamble_only_tree():
    rep = parse("只有一段话。没有任何标题。\n第二段。\n")
    assert [s.section_id for s in rep.sections] == ["0"]
    assert len(rep.sections[0].paragraphs) == 2
    empty = parse("")
    assert [s.section_id for s in empty.sections] == ["0"] and empty.sections[0].paragraphs == []


def test_chrome_rules_in_general():
    text = (
        "当前位置：首页 > 政务公开 > 工作报告\n某某县2020年政府工作报告\n"
        "来源：县政府办  发布时间：2021-01-05\n"
        "各位代表：\n一、回顾\n工作取得新进展。\n扫一扫在手机打开当前页\n二、安排\n继续努力。\n"
        "附件：\n1．附件1：名词解释.doc\n2．民生实事清单\n责任编辑：张三\n某某县人民政府\n二〇二一年一月五日\n"
    )
    rep = parse(text)
    assert rep.parsed_title == "某某县2020年政府工作报告"
    assert rep.signed_date == "2021-01-05"
    assert [p.text for p in rep.paragraphs()] == ["各位代表：", "工作取得新进展。", "继续努力。"]
    assert outline(rep)[1:] == [("1", "一、", "回顾", 1), ("2", "二、", "安排", 1)]


def test_signature_with_iso_date_and_no_issuer():
    rep = parse("一、总结\n工作完成。\n2020-03-17\n")
    assert rep.signed_date == "2020-03-17"
    assert [p.text for p in rep.paragraphs()] == ["工作完成。"]


def test_numbers_and_dates():
    assert [cn_to_int(s) for s in ("七", "十", "十一", "二十", "二十一", "一百零五", "12", "二〇二〇")] == [
        7,
        10,
        11,
        20,
        21,
        105,
        12,
        2020,
    ]
    assert parse_date("2020年3月17日\xa0") == "2020-03-17"
    assert parse_date("二〇二〇年三月十七日") == "2020-03-17"
    assert parse_date("2020年13月1日") is None
    assert parse_date("2020年3月17日召开会议") is None


def test_ten_megabyte_single_line_parses_quickly():
    body = "".join(p.text for p in parse_file(SEED_FILE).paragraphs())
    line = (body * (10_000_000 // len(body) + 1))[:10_000_000]
    started = time.perf_counter()
    rep = parse("一、标题\n" + line)
    elapsed = time.perf_counter() - started
    assert elapsed < 15, f"{elapsed:.1f} s"
    para = rep.section("1").paragraphs[0]
    assert len(para.text) == 10_000_000 and len(para.sentences) > 10_000
    started = time.perf_counter()
    parse("测" * 10_000_000)  # no punctuation at all
    parse("（一）" + "a" * 10_000_000)
    assert time.perf_counter() - started < 15


# ------------------------------------------------------------------------------------- property

_seed_text = SEED_FILE.read_text(encoding="utf-8")
_pieces = st.sampled_from(
    [
        "一、",
        "（一）",
        "(二)",
        "1.",
        "1、",
        "（1）",
        "第一章 ",
        "第十条 ",
        "第二节",
        "## ",
        "# ",
        "①",
        "。",
        "！",
        "？",
        "；",
        "一是",
        "二是",
        "：",
        "\n",
        "\r\n",
        "\r",
        "\ufeff",
        "\u3000",
        "\xa0",
        " ",
        "标题",
        "内容",
        "2020年3月17日",
        "衡阳市人民政府",
        "扫一扫在手机打开当前页",
        "附件：",
        "1．附件1：a.doc",
        "”",
        "）",
        "当前位置:首页 > 信息公开",
        "# title: 标题",
        "<!-- x -->",
        "十",
        "〇",
        "零",
        "第零条 ",
    ]
)
_mangled_seed = st.builds(
    lambda a, b, cut: _seed_text[a:b] + _seed_text[:cut],
    st.integers(0, len(_seed_text)),
    st.integers(0, len(_seed_text)),
    st.integers(0, len(_seed_text)),
)
_headings_only = st.lists(
    st.sampled_from([ln for ln in _seed_text.splitlines() if ln.startswith(("一", "二", "三", "(", "七"))]),
    max_size=30,
).map("\n".join)
_texts = st.one_of(
    st.text(max_size=300),
    st.lists(_pieces, max_size=60).map("".join),
    _mangled_seed,
    _headings_only,
    st.lists(st.one_of(_pieces, st.text(max_size=5)), max_size=80).map("".join),
)


@settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(_texts)
def test_parse_never_raises_and_offsets_round_trip(text):
    rep = parse(text)
    assert_offsets(rep)
    assert rep.text == normalize_text(text)
    assert "\r" not in rep.text
