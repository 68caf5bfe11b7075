"""The pure parts of the published-format readers: code points, page numbers, line joins, PDF layout
from positioned glyphs (fake bold, furniture, paragraphs across pages), Word numbering labels."""

from __future__ import annotations

from lxml import etree

from retrieval.readers.cleanup import fix_codepoints, garbage_share, is_page_number, join_wrapped
from retrieval.readers.numbering import Numbering, chinese_number, format_number
from retrieval.readers.pdf_layout import Glyph, build_lines, layout_paragraphs

# ---------------------------------------------------------------------------------- cleanup


def test_kangxi_radicals_and_compatibility_ideographs_map_back_but_punctuation_stays():
    # ⼀ U+2F00 (Kangxi 一), ⼈ U+2F08 (人), ⻓ U+2ED3 (radical supplement 长), 﨑 compat ideograph
    text = "⼀是加强⼈才队伍建设，⻓效机制（试⾏）：１２３"
    fixed = fix_codepoints(text)
    assert fixed == "一是加强人才队伍建设，长效机制（试行）：１２３"
    assert "，" in fixed and "（" in fixed and "：" in fixed  # no NFKC of the whole text


def test_page_numbers_in_the_forms_reports_print_them():
    for line in ("— 3 —", "- 12 -", "－ 7 －", "3", "第3页", "第 3 页 共 12 页", "3/12", "Page 4 of 9"):
        assert is_page_number(line), line
    for line in ("2019年", "一、总体情况", "— 共同推进 —", "3.5亿元", ""):
        assert not is_page_number(line), line


def test_wrapped_lines_join_without_space_except_between_ascii_words():
    assert join_wrapped("全市共调解矛盾纠", "纷1.2万件") == "全市共调解矛盾纠纷1.2万件"
    assert join_wrapped("the Belt and", "Road") == "the Belt and Road"
    assert join_wrapped("GDP", "增长") == "GDP增长"


def test_garbage_share_counts_cid_replacement_and_private_use():
    assert garbage_share("正常的中文文本") == 0.0
    assert garbage_share("(cid:12)(cid:13)文") > 0.9
    assert 0.4 < garbage_share("\ufffd\ue001文字") < 0.8


# ------------------------------------------------------------------------------- PDF layout

BODY = "FangSong"
HEI = "SimHei"
SIZE = 16.0
LEFT, RIGHT = 80.0, 80.0 + 25 * SIZE  # 25 characters per full line


def _line(text: str, top: float, *, indent: int = 0, font: str = BODY, fonts: list[str] | None = None,
          size: float = SIZE, x0: float | None = None) -> list[Glyph]:
    start = LEFT + indent * size if x0 is None else x0
    out = []
    for i, ch in enumerate(text):
        f = fonts[i] if fonts else font
        out.append(Glyph(ch, start + i * size, start + (i + 1) * size, top, top + size, size, "ABCDEF+" + f))
    return out


def _full(n: int, ch: str = "文") -> str:
    return ch * n


def test_fake_bold_doubles_are_dropped_and_no_spaces_enter_chinese():
    glyphs = []
    for i, ch in enumerate("一、总体情况"):
        x = LEFT + i * SIZE
        glyphs.append(Glyph(ch, x, x + SIZE, 100, 116, SIZE, HEI))
        glyphs.append(Glyph(ch, x + 0.4, x + SIZE + 0.4, 100.2, 116.2, SIZE, HEI))  # drawn again
    lines = build_lines(glyphs)
    assert [line.text for line in lines] == ["一、总体情况"]


def test_justified_spread_is_not_a_space_but_a_typed_space_is():
    spread = [Glyph(c, LEFT + i * (SIZE + 3), LEFT + i * (SIZE + 3) + SIZE, 100, 116, SIZE, BODY)
              for i, c in enumerate("全面推进依法行政")]  # a justified line: 3 pt between glyphs
    assert build_lines(spread)[0].text == "全面推进依法行政"
    article = _line("第一条", 100) + _line("为了优化营商环境", 100, x0=LEFT + 4 * SIZE)  # an em of gap
    assert build_lines(article)[0].text == "第一条 为了优化营商环境"
    words = [Glyph(c, 200 + i * 8, 207 + i * 8, 100, 116, SIZE, BODY) for i, c in enumerate("GDP")]
    words += [Glyph(c, 240 + i * 8, 247 + i * 8, 100, 116, SIZE, BODY) for i, c in enumerate("up")]
    assert build_lines(words)[0].text == "GDP up"


def test_paragraphs_from_indent_short_last_line_heading_font_and_across_pages():
    height = 842.0
    gap = 28.0
    page1 = []
    top = 120.0
    page1 += _line("衡阳市2019年度法治政府建设情况报告", top, x0=LEFT + 3.5 * SIZE, size=SIZE)  # centred title
    top += gap * 2
    page1 += _line("一、坚持加强领导", top, indent=2, font=HEI)  # heading, own paragraph
    top += gap
    page1 += _line(_full(23), top, indent=2)  # paragraph 1 starts indented
    top += gap
    page1 += _line(_full(25, "续"), top)  # continues, full line
    top += gap
    page1 += _line(_full(25, "跨"), top)  # last line of the page, full: continues on page 2
    page1 += _line("— 1 —", height - 60, x0=LEFT + 10 * SIZE)  # page number in the footer band
    page1 += _line("衡阳市人民政府文件", 40, x0=LEFT + 8 * SIZE, size=10.5)  # running header
    page2 = []
    top = 120.0
    page2 += _line(_full(10, "页"), top)  # continuation, short: paragraph ends
    top += gap
    page2 += _line("（一）健全机制。市委高度重视全市法治工作开展。", top, indent=2, fonts=["KaiTi"] * 7 + [BODY] * 16)
    top += gap
    page2 += _line(_full(25, "甲"), top)
    page2 += _line("1.5亿元用于建设的项目资金已经全部到位并且发挥作用", top + gap)  # wrapped line starting "1."
    page2 += _line("— 2 —", height - 60, x0=LEFT + 10 * SIZE)
    page2 += _line("衡阳市人民政府文件", 40, x0=LEFT + 8 * SIZE, size=10.5)
    paragraphs = layout_paragraphs([page1, page2], [height, height])
    assert paragraphs == [
        "衡阳市2019年度法治政府建设情况报告",
        "一、坚持加强领导",
        _full(23) + _full(25, "续") + _full(25, "跨") + _full(10, "页"),
        "（一）健全机制。市委高度重视全市法治工作开展。" + _full(25, "甲")
        + "1.5亿元用于建设的项目资金已经全部到位并且发挥作用",
    ]


def test_a_line_starting_with_a_marker_in_the_body_font_does_not_start_a_paragraph():
    lines = _line(_full(25), 100, indent=0) + _line("（二）" + _full(22, "乙"), 128) + _line(_full(3, "丙"), 156)
    lines += _line("二、另一章", 184, font=HEI) + _line(_full(25, "丁"), 212, indent=2)
    lines += _line(_full(2, "戊"), 240)
    assert layout_paragraphs([lines], [842.0]) == [
        _full(25) + "（二）" + _full(22, "乙") + _full(3, "丙"),
        "二、另一章",
        _full(25, "丁") + _full(2, "戊"),
    ]


def test_outline_titles_mark_headings_without_indent_or_font_change():
    lines = _line(_full(25), 100) + _line("加强组织领导全面推进依法行政工作的开展与落实并持续深化改", 128)
    lines += _line(_full(25, "乙"), 156) + _line(_full(3, "丙"), 184)
    assert len(layout_paragraphs([lines], [842.0])) == 1
    split = layout_paragraphs([lines], [842.0], ["加强组织领导全面推进依法行政工作的开展与落实并持续深化改"])
    heading = "加强组织领导全面推进依法行政工作的开展与落实并持续深化改"
    assert split == [_full(25), heading, _full(25, "乙") + _full(3, "丙")]


# ----------------------------------------------------------------------------- Word numbering

NS = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
NUMBERING = f"""<w:numbering {NS}>
<w:abstractNum w:abstractNumId="0">
  <w:lvl w:ilvl="0"><w:start w:val="1"/><w:numFmt w:val="chineseCounting"/><w:lvlText w:val="%1、"/></w:lvl>
  <w:lvl w:ilvl="1"><w:start w:val="1"/><w:numFmt w:val="chineseCounting"/><w:lvlText w:val="（%2）"/></w:lvl>
  <w:lvl w:ilvl="2"><w:start w:val="1"/><w:numFmt w:val="decimal"/><w:lvlText w:val="%3."/></w:lvl>
</w:abstractNum>
<w:num w:numId="1"><w:abstractNumId w:val="0"/></w:num>
<w:num w:numId="2"><w:abstractNumId w:val="0"/>
  <w:lvlOverride w:ilvl="0"><w:startOverride w:val="3"/></w:lvlOverride></w:num>
</w:numbering>"""
STYLES = f"""<w:styles {NS}>
<w:style w:styleId="Heading1"><w:pPr><w:numPr><w:ilvl w:val="0"/><w:numId w:val="1"/></w:numPr></w:pPr></w:style>
<w:style w:styleId="Heading2"><w:pPr><w:numPr><w:ilvl w:val="1"/><w:numId w:val="1"/></w:numPr></w:pPr></w:style>
<w:style w:styleId="MyHeading2"><w:basedOn w:val="Heading2"/></w:style>
<w:style w:styleId="Normal"/>
</w:styles>"""


def _p(num_id: str | None = None, ilvl: int | None = None):
    inner = ""
    if num_id is not None:
        inner = f'<w:pPr><w:numPr><w:ilvl w:val="{ilvl or 0}"/><w:numId w:val="{num_id}"/></w:numPr></w:pPr>'
    return etree.fromstring(f"<w:p {NS}>{inner}</w:p>")


def test_chinese_counting_numbers():
    assert [chinese_number(n) for n in (1, 9, 10, 11, 20, 21, 99, 100, 105, 112)] == [
        "一", "九", "十", "十一", "二十", "二十一", "九十九", "一百", "一百零五", "一百一十二"]
    assert format_number(3, "ideographTraditional") == "丙"
    assert format_number(2, "decimalEnclosedCircle") == "②"
    assert format_number(4, "upperRoman") == "IV"


def test_style_inherited_numbering_restarts_deeper_levels():
    numbering = Numbering(etree.fromstring(NUMBERING), etree.fromstring(STYLES))
    seq = [
        numbering.label(_p(), "Heading1"),
        numbering.label(_p(), "Heading2"),
        numbering.label(_p(), "MyHeading2"),  # numbering through the basedOn chain
        numbering.label(_p(), "Normal"),
        numbering.label(_p("1", 2), None),
        numbering.label(_p(), "Heading1"),
        numbering.label(_p(), "Heading2"),  # (一) again under 二、
    ]
    assert seq == ["一、", "（一）", "（二）", "", "1.", "二、", "（一）"]


def test_paragraph_numpr_and_start_override():
    numbering = Numbering(etree.fromstring(NUMBERING), etree.fromstring(STYLES))
    assert numbering.label(_p("2", 0), None) == "三、"
    assert numbering.label(_p("2", 0), None) == "四、"
    assert numbering.label(_p("0", 0), "Heading1") == ""  # numId 0 switches numbering off
