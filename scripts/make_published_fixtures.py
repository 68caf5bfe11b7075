"""Make "as published" DOCX and PDF versions of report texts, laid out the way Chinese offices do (公文).

    .venv/bin/python scripts/make_published_fixtures.py                      # all, into tests/fixtures/published
    .venv/bin/python scripts/make_published_fixtures.py OUT_DIR --ids hengyang-2019 pingshan-2019

Each text is parsed with the project's own parser (`retrieval.parse`) and written back in document
order: title line, preamble, headings with their paragraphs, signature block. The DOCX is built with
python-docx (A4, 公文 margins, 三号 16 pt, exact 28.95 pt lines, 仿宋_GB2312 / 黑体 / 楷体_GB2312 /
方正小标宋简体 set through w:eastAsia, running header with the title, "— PAGE —" footer). Labels are either
typed or Word auto-numbering (chineseCounting "%1、" / "（%2）"), inherited from the heading styles or
set per paragraph. LibreOffice (headless, own temporary profile, fontconfig aliases so each Chinese
font name maps to a different real family) turns every DOCX into a PDF with an outline; the seed also
gets an encrypted PDF (password "secret") and a legacy .doc. `sources.json` maps id → text path and
numbering mode. The outputs are checked at the end (pages, fonts, outline, labels) and summarised.

Needs (Debian): libreoffice-writer-nogui, fonts-noto-cjk, fonts-arphic-ukai; python-docx and
pdfplumber in the project venv.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import docx
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_LINE_SPACING
from docx.oxml import OxmlElement, parse_xml
from docx.oxml.ns import nsdecls, qn
from docx.shared import Cm, Pt, RGBColor

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from retrieval.document import Report, ReportMeta, Section  # noqa: E402
from retrieval.parse import parse_report  # noqa: E402
from retrieval.sources import read_report_text  # noqa: E402

DEFAULT_OUT = REPO / "tests" / "fixtures" / "published"
SEED = "hengyang-2019"
PASSWORD = "secret"
TIMEOUT = 300  # seconds for one LibreOffice run


@dataclass(frozen=True)
class Spec:
    rid: str
    text: str  # relative to the repository
    numbering: str  # "style" (numPr in the heading styles), "paragraph" (numPr per paragraph) or "typed"
    page_field: str  # "simple" (w:fldSimple) or "complex" (w:fldChar) PAGE field in the footer


SPECS = [
    Spec(SEED, "corpus/hengyang-2019-fazhi-zhengfu-report.txt", "style", "simple"),
    Spec(
        "longhua-2019-fazhi",
        "../shared/corpora/gov-work-reports/深圳市龙华区2019年法治政府建设工作报告_2019.txt",
        "paragraph",
        "complex",
    ),
    Spec("pingshan-2019", "../shared/corpora/gov-work-reports/2019年坪山区政府工作报告_2019.txt", "typed", "complex"),
    Spec(
        "regulation-yingshang-2019",
        "../shared/corpora/regulations/law_youhua_yingshang_huanjing_2019.txt",
        "typed",
        "simple",
    ),
]

# ----------------------------------------------------------------------------------- 公文 layout

BODY_FONT = "仿宋_GB2312"
LATIN_FONT = "Times New Roman"
TITLE_FONT = "方正小标宋简体"
PAGE_FONT = "宋体"
LEVEL_FONTS = {1: ("黑体", False), 2: ("楷体_GB2312", False), 3: (BODY_FONT, True)}  # font, bold
BODY_SIZE = Pt(16)  # 三号
TITLE_SIZE = Pt(22)  # 二号
LINE = Pt(28.95)  # 22 lines a page
INDENT = Pt(32)  # two characters

# fontconfig: each Chinese font name an office uses → a different family installed here
FONT_ALIASES = {
    "Noto Serif CJK SC": ["仿宋_GB2312", "仿宋", "FangSong", "FangSong_GB2312", "宋体", "SimSun"],
    "Noto Sans CJK SC": ["黑体", "SimHei"],
    "AR PL UKai CN": ["楷体_GB2312", "楷体", "KaiTi", "KaiTi_GB2312"],
}
BOLD_ALIASES = {"Noto Serif CJK SC": ["方正小标宋简体", "方正小标宋_GBK", "FZXiaoBiaoSong-B05S"]}

_MD_MARK = re.compile(r"^#{1,6}[ \t\u3000]+")
_CN = "一二三四五六七八九十百零〇两"
_LEVEL1_MARK = re.compile(rf"^[{_CN}]+、")
_LEVEL2_MARK = re.compile(rf"^[（(][{_CN}]+[)）]")
_CHAPTER = re.compile(rf"^第[{_CN}\d]+(?:章|节|编|篇|部分)")
_DATE_LINE = re.compile(
    r"^(?:\d{4}年\d{1,2}月\d{1,2}日|\d{4}-\d{2}-\d{2}"
    r"|[〇零一二三四五六七八九○]{4}年[一二三四五六七八九十]{1,2}月[一二三四五六七八九十]{1,3}日)$"
)
_WS = "\u3000\xa0 \t"
_PPR_AFTER_OVERFLOW = (
    "w:topLinePunct",
    "w:autoSpaceDE",
    "w:autoSpaceDN",
    "w:bidi",
    "w:adjustRightInd",
    "w:snapToGrid",
    "w:spacing",
    "w:ind",
    "w:contextualSpacing",
    "w:mirrorIndents",
    "w:suppressOverlap",
    "w:jc",
    "w:textDirection",
    "w:textAlignment",
    "w:textboxTightWrap",
    "w:outlineLvl",
    "w:divId",
    "w:cnfStyle",
    "w:rPr",
    "w:sectPr",
    "w:pPrChange",
)


# ------------------------------------------------------------------------------------ structure


def load(spec: Spec) -> tuple[Report, str]:
    """The parsed report and the title line to print (the text's own, else one from the file name)."""
    path = REPO / spec.text
    fallback = re.sub(r"_\d{4}$", "", path.stem)
    report = parse_report(read_report_text(path), ReportMeta(report_id=spec.rid, title=fallback, file=path.name))
    return report, report.parsed_title or fallback


def heading_parts(report: Report, sec: Section) -> tuple[str, str, int]:
    """(heading words, run-in body text, how many of sec.paragraphs the heading line holds)."""
    eol = report.text.find("\n", sec.start)
    eol = len(report.text) if eol < 0 else eol
    first = sec.paragraphs[0] if sec.paragraphs else None
    if first is not None and first.start < eol:  # run-in: "(一)标题。正文…" or "第一条 正文…"
        return _MD_MARK.sub("", report.text[sec.start : first.start]), first.text, 1
    return _MD_MARK.sub("", report.text[sec.start : eol].strip(_WS)), "", 0


def numberable(report: Report) -> str | None:
    """None when 一、 / （一） labels run 1, 2, 3 … (restarting per chapter), else why Word cannot number them."""
    chapters = [s for s in report.sections if s.level > 0]
    for i, sec in enumerate(chapters, 1):
        head, _, _ = heading_parts(report, sec)
        if sec.level != 1 or sec.section_id != str(i) or not _LEVEL1_MARK.match(head):
            return f"chapter {i}: {sec.label or sec.title!r} is not the {i}th 一、 heading"
        for j, kid in enumerate(sec.children, 1):
            head, _, _ = heading_parts(report, kid)
            if kid.level != 2 or kid.section_id != f"{i}.{j}" or not _LEVEL2_MARK.match(head):
                return f"{kid.label!r} is not the {j}th （一） heading under chapter {i}"
    return None


def signature(report: Report) -> tuple[str | None, str | None]:
    """(issuer line, date line) of the signature block, as the text has them."""
    if not report.signed_date:
        return None, None
    last = max((p.end for p in report.paragraphs()), default=0)
    lines = [ln.strip(_WS) for ln in report.text[last:].split("\n")]
    lines = [ln for ln in lines if ln]
    for k, line in enumerate(lines):
        if _DATE_LINE.match(line):
            return (lines[k - 1] if k else None), line
    return None, None


# ------------------------------------------------------------------------------------ OXML help


def set_fonts(rpr, east_asia: str, latin: str | None = None) -> None:
    """Explicit fonts on an rPr (no theme fonts): w:eastAsia for Chinese, ascii/hAnsi for the rest."""
    rfonts = rpr.get_or_add_rFonts()
    for attr in list(rfonts.attrib):
        del rfonts.attrib[attr]
    latin = latin or east_asia
    for key, value in (("ascii", latin), ("hAnsi", latin), ("eastAsia", east_asia), ("cs", latin)):
        rfonts.set(qn(f"w:{key}"), value)


def styled_run(
    paragraph, text: str, font: str, *, bold: bool = False, size: Pt | None = None, latin: str | None = LATIN_FONT
):
    """A run with its fonts set directly, the way Word writes them."""
    run = paragraph.add_run(text)
    set_fonts(run._r.get_or_add_rPr(), font, latin)
    run.font.bold = bold
    if size is not None:
        run.font.size = size
    return run


def reset_style(style) -> None:
    """Drop a style's own paragraph and run properties (theme fonts, colours, spacing)."""
    for child in (style.element.pPr, style.element.rPr):
        if child is not None:
            style.element.remove(child)


def add_outline_level(style, level: int) -> None:
    lvl = OxmlElement("w:outlineLvl")
    lvl.set(qn("w:val"), str(level))
    style.element.get_or_add_pPr().append(lvl)


def body_format(fmt, *, indent: Pt | int = INDENT, align: int = WD_ALIGN_PARAGRAPH.JUSTIFY, line: Pt = LINE) -> None:
    fmt.alignment = align
    fmt.first_line_indent = indent
    fmt.space_before = Pt(0)
    fmt.space_after = Pt(0)
    fmt.line_spacing_rule = WD_LINE_SPACING.EXACTLY
    fmt.line_spacing = line


def setup_styles(document) -> None:
    """docDefaults, Normal, Title, Heading 1–3, Header, Footer in 公文 form."""
    styles = document.styles
    defaults = styles.element.find(qn("w:docDefaults"))
    rpr = defaults.find(qn("w:rPrDefault")).find(qn("w:rPr"))
    set_fonts(rpr, BODY_FONT, LATIN_FONT)
    for tag in ("w:sz", "w:szCs"):
        rpr.find(qn(tag)).set(qn("w:val"), "32")
    lang = rpr.find(qn("w:lang"))
    lang.set(qn("w:eastAsia"), "zh-CN")
    spacing = defaults.find(qn("w:pPrDefault")).find(qn("w:pPr")).find(qn("w:spacing"))
    spacing.set(qn("w:after"), "0")

    normal = styles["Normal"]
    body_format(normal.paragraph_format)
    # Word's own default, written out: LibreOffice reads overflowPunct inverted (val 0 → hanging punctuation),
    # and in justified lines it silently drops some hanging ，、 from the PDF it exports
    no_hang = parse_xml(f'<w:overflowPunct {nsdecls("w")} w:val="1"/>')
    normal.element.get_or_add_pPr().insert_element_before(no_hang, *_PPR_AFTER_OVERFLOW)
    normal.font.size = BODY_SIZE
    set_fonts(normal.element.get_or_add_rPr(), BODY_FONT, LATIN_FONT)

    title = styles["Title"]
    reset_style(title)
    body_format(title.paragraph_format, indent=Pt(0), align=WD_ALIGN_PARAGRAPH.CENTER, line=Pt(36))
    title.font.size = TITLE_SIZE
    title.font.color.rgb = RGBColor(0, 0, 0)
    set_fonts(title.element.get_or_add_rPr(), TITLE_FONT)

    for level, (font, bold) in LEVEL_FONTS.items():
        style = styles[f"Heading {level}"]
        reset_style(style)
        body_format(style.paragraph_format)
        style.paragraph_format.keep_with_next = True
        add_outline_level(style, level - 1)
        style.font.size = BODY_SIZE
        style.font.bold = bold
        style.font.color.rgb = RGBColor(0, 0, 0)
        set_fonts(style.element.get_or_add_rPr(), font, LATIN_FONT)

    for name, size, font in (("Header", Pt(10.5), BODY_FONT), ("Footer", Pt(14), PAGE_FONT)):
        style = styles[name]
        body_format(style.paragraph_format, indent=Pt(0), align=WD_ALIGN_PARAGRAPH.CENTER, line=Pt(18))
        style.font.size = size
        set_fonts(style.element.get_or_add_rPr(), font, LATIN_FONT)


def add_numbering(document, style_linked: bool) -> int:
    """A chineseCounting multilevel list (一、 / （一）) in numbering.xml; returns its numId."""
    numbering = document.part.numbering_part.numbering_definitions._numbering
    abs_ids = [int(a.get(qn("w:abstractNumId"))) for a in numbering.findall(qn("w:abstractNum"))]
    num_ids = [int(n.get(qn("w:numId"))) for n in numbering.findall(qn("w:num"))]
    abs_id, num_id = max(abs_ids, default=0) + 1, max(num_ids, default=0) + 1
    levels = []
    for ilvl in range(9):
        if ilvl < 2:
            fmt, text = "chineseCounting", ("%1、" if ilvl == 0 else "（%2）")
            font = LEVEL_FONTS[ilvl + 1][0]
        else:
            fmt, text, font = "decimal", f"%{ilvl + 1}.", BODY_FONT
        restart = f'<w:lvlRestart w:val="{ilvl}"/>' if ilvl else ""
        pstyle = f'<w:pStyle w:val="Heading{ilvl + 1}"/>' if style_linked and ilvl < 2 else ""
        levels.append(
            f'<w:lvl w:ilvl="{ilvl}"><w:start w:val="1"/><w:numFmt w:val="{fmt}"/>{restart}{pstyle}'
            f'<w:suff w:val="nothing"/><w:lvlText w:val="{text}"/><w:lvlJc w:val="left"/>'
            f'<w:pPr><w:ind w:left="0" w:firstLine="640"/></w:pPr>'
            f'<w:rPr><w:rFonts w:ascii="{font}" w:hAnsi="{font}" w:eastAsia="{font}" w:hint="eastAsia"/></w:rPr>'
            f"</w:lvl>"
        )
    abstract = parse_xml(
        f'<w:abstractNum {nsdecls("w")} w:abstractNumId="{abs_id}"><w:nsid w:val="{0x5A3C1000 + abs_id:08X}"/>'
        f'<w:multiLevelType w:val="multilevel"/><w:tmpl w:val="{0x6B2E4000 + abs_id:08X}"/>{"".join(levels)}'
        f"</w:abstractNum>"
    )
    override = "" if style_linked else '<w:lvlOverride w:ilvl="0"><w:startOverride w:val="1"/></w:lvlOverride>'
    num = parse_xml(f'<w:num {nsdecls("w")} w:numId="{num_id}"><w:abstractNumId w:val="{abs_id}"/>{override}</w:num>')
    first_num = numbering.find(qn("w:num"))
    if first_num is not None:
        first_num.addprevious(abstract)
    else:
        numbering.append(abstract)
    numbering.append(num)
    return num_id


def set_num(ppr, num_id: int, ilvl: int) -> None:
    numpr = ppr.get_or_add_numPr()
    numpr.get_or_add_ilvl().val = ilvl
    numpr.get_or_add_numId().val = num_id


def page_field(paragraph, kind: str) -> None:
    """A PAGE field: w:fldSimple, or the begin/instr/separate/end fldChar runs Word writes."""
    rpr = f'<w:rPr><w:rFonts w:ascii="{PAGE_FONT}" w:hAnsi="{PAGE_FONT}" w:eastAsia="{PAGE_FONT}"/></w:rPr>'
    if kind == "simple":
        paragraph._p.append(
            parse_xml(f'<w:fldSimple {nsdecls("w")} w:instr=" PAGE "><w:r>{rpr}<w:t>1</w:t></w:r></w:fldSimple>')
        )
        return
    for inner in (
        '<w:fldChar w:fldCharType="begin"/>',
        '<w:instrText xml:space="preserve"> PAGE </w:instrText>',
        '<w:fldChar w:fldCharType="separate"/>',
        "<w:t>1</w:t>",
        '<w:fldChar w:fldCharType="end"/>',
    ):
        paragraph._p.append(parse_xml(f"<w:r {nsdecls('w')}>{rpr}{inner}</w:r>"))


def header_footer(document, title: str, field_kind: str) -> None:
    """Running header (the title, a rule under it) and the centred "— PAGE —" footer, on every page."""
    section = document.sections[0]
    head = section.header.paragraphs[0]
    head.style = document.styles["Header"]
    styled_run(head, title, BODY_FONT)
    bdr = parse_xml(f'<w:pBdr {nsdecls("w")}><w:bottom w:val="single" w:sz="6" w:space="1" w:color="000000"/></w:pBdr>')
    head._p.get_or_add_pPr().insert_element_before(bdr, "w:shd", "w:tabs", "w:spacing", "w:ind", "w:jc", "w:rPr")
    foot = section.footer.paragraphs[0]
    foot.style = document.styles["Footer"]
    styled_run(foot, "— ", PAGE_FONT, latin=PAGE_FONT)
    page_field(foot, field_kind)
    styled_run(foot, " —", PAGE_FONT, latin=PAGE_FONT)


# ------------------------------------------------------------------------------------ documents


def build_docx(spec: Spec, report: Report, title: str, path: Path) -> str:
    """Write the DOCX; returns the numbering mode actually used."""
    mode = spec.numbering
    if mode != "typed" and (why := numberable(report)):
        print(f"  {spec.rid}: labels typed, not auto-numbered: {why}")
        mode = "typed"
    document = docx.Document()
    section = document.sections[0]
    section.page_width, section.page_height = Cm(21), Cm(29.7)
    section.top_margin, section.bottom_margin = Cm(3.7), Cm(3.5)
    section.left_margin, section.right_margin = Cm(2.8), Cm(2.6)
    section.header_distance, section.footer_distance = Cm(2.0), Cm(2.5)
    setup_styles(document)
    theme_lang = document.settings.element.find(qn("w:themeFontLang"))
    if theme_lang is not None:  # python-docx's template says ja-JP
        theme_lang.set(qn("w:eastAsia"), "zh-CN")
    num_id = add_numbering(document, style_linked=mode == "style") if mode != "typed" else 0
    if mode == "style":
        for ilvl in (0, 1):
            set_num(document.styles[f"Heading {ilvl + 1}"].element.get_or_add_pPr(), num_id, ilvl)
    header_footer(document, title, spec.page_field)

    styled_run(document.add_paragraph(style="Title"), title, TITLE_FONT, latin=TITLE_FONT)
    document.add_paragraph()  # the blank line under the title
    for sec in report.walk():
        skip = 0
        if sec.level > 0:
            head, body, skip = heading_parts(report, sec)
            level = min(sec.level, 3)
            font, bold = LEVEL_FONTS[level]
            par = document.add_paragraph(style=f"Heading {level}")
            if mode != "typed" and level <= 2:
                head = (_LEVEL1_MARK if level == 1 else _LEVEL2_MARK).sub("", head, count=1)
                if mode == "paragraph":
                    set_num(par._p.get_or_add_pPr(), num_id, level - 1)
            if _CHAPTER.match(head) and not body:  # regulation chapters sit centred
                par.paragraph_format.alignment = WD_ALIGN_PARAGRAPH.CENTER
                par.paragraph_format.first_line_indent = Pt(0)
            styled_run(par, head, font, bold=bold)
            if body:  # a run-in heading is a body paragraph too: not kept with the next one
                par.paragraph_format.keep_with_next = False
                styled_run(par, body, BODY_FONT)
        for k, para in enumerate(sec.paragraphs[skip:]):
            par = document.add_paragraph()
            salutation = sec.level == 0 and k == 0 and len(para.text) <= 8 and para.text.endswith(("：", ":"))
            if salutation:  # 各位代表： starts at the margin
                par.paragraph_format.first_line_indent = Pt(0)
            styled_run(par, para.text, BODY_FONT)
    issuer, date = signature(report)
    if date:
        document.add_paragraph()
        width = max(len(date), len(issuer or ""))
        for line in (issuer, date):
            if line:
                par = document.add_paragraph()
                par.paragraph_format.alignment = WD_ALIGN_PARAGRAPH.RIGHT
                par.paragraph_format.first_line_indent = Pt(0)
                par.paragraph_format.right_indent = Pt(16 * (4 + (width - len(line)) / 2))  # 成文日期右空四字
                styled_run(par, line, BODY_FONT)

    props = document.core_properties
    when = datetime.fromisoformat(report.signed_date or "2020-01-01")
    props.title, props.author, props.last_modified_by = title, issuer or "", issuer or ""
    props.created = props.modified = when
    props.revision = 1
    props.comments = props.keywords = props.subject = ""
    document.save(str(path))
    return mode


# ------------------------------------------------------------------------------------ LibreOffice


def fonts_conf(directory: Path) -> Path:
    """A fonts.conf: the system one, then Chinese office font names → distinct installed families."""
    rules = []
    for aliases, bold in ((FONT_ALIASES, False), (BOLD_ALIASES, True)):
        for family, names in aliases.items():
            for name in names:
                weight = '<edit name="weight" mode="assign" binding="strong"><const>bold</const></edit>' if bold else ""
                rules.append(
                    f'<match target="pattern"><test qual="any" name="family"><string>{name}</string></test>'
                    f'<edit name="family" mode="assign" binding="strong"><string>{family}</string></edit>'
                    f"{weight}</match>"
                )
                rules.append(
                    f'<alias binding="same"><family>{name}</family><prefer><family>{family}</family></prefer></alias>'
                )
    path = directory / "fonts.conf"
    path.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>\n'
        '<include ignore_missing="yes">/etc/fonts/fonts.conf</include>\n' + "\n".join(rules) + "\n</fontconfig>\n",
        encoding="utf-8",
    )
    return path


def soffice_binary() -> str:
    found = shutil.which("soffice") or shutil.which("libreoffice")
    if not found:
        sys.exit("soffice not found: apt-get install libreoffice-writer-nogui fonts-noto-cjk fonts-arphic-ukai")
    return found


def convert(files: list[Path], outdir: Path, target: str, conf: Path) -> None:
    """soffice --headless --convert-to TARGET, with its own throw-away profile and our fonts.conf."""
    with tempfile.TemporaryDirectory(prefix="lo-profile-") as profile:
        cmd = [
            soffice_binary(),
            "--headless",
            "--norestore",
            f"-env:UserInstallation={Path(profile).as_uri()}",
            "--convert-to",
            target,
            "--outdir",
            str(outdir),
            *map(str, files),
        ]
        env = dict(os.environ, FONTCONFIG_FILE=str(conf))
        done = subprocess.run(cmd, env=env, timeout=TIMEOUT, capture_output=True, text=True)
    ext = target.split(":", 1)[0]
    missing = [f.name for f in files if not (outdir / f"{f.stem}.{ext}").is_file()]
    if done.returncode or missing:
        sys.exit(f"soffice failed (rc {done.returncode}, missing {missing}): {done.stderr.strip()[-500:]}")


# ------------------------------------------------------------------------------------ checks


def family(fontname: str) -> str:
    """'ABCDEF+NotoSerifCJKsc-Bold' → 'NotoSerifCJKsc'."""
    return re.split(r"-(?:Regular|Bold|Medium|Light|Book|Black|SemiBold)\b", fontname.split("+", 1)[-1])[0]


def check_pdf(path: Path, password: str = "") -> list[str]:
    """Print pages, page-1 text, fonts and outline of a PDF; returns problems found."""
    import pdfplumber

    problems = []
    with pdfplumber.open(path, password=password) as pdf:
        chars = [c for page in pdf.pages for c in page.chars]
        text = "".join(page.extract_text() or "" for page in pdf.pages)
        fonts = Counter(c["fontname"].split("+", 1)[-1] for c in chars)
        families = {family(name) for name in fonts}
        try:
            outline = sum(1 for _ in pdf.doc.get_outlines())
        except Exception:  # pdfminer raises PDFNoOutlines
            outline = 0
        first = (pdf.pages[0].extract_text() or "").replace("\n", "⏎")[:300]
        print(f"  {path.name}: {len(pdf.pages)} pages, outline entries {outline}, {len(families)} families")
        print(f"    fonts: {dict(fonts.most_common())}")
        print(f"    page 1: {first}")
    if "(cid:" in text:
        problems.append(f"{path.name}: (cid:) glyphs in the text")
    if len(families) < 3:
        problems.append(f"{path.name}: only {sorted(families)} font families")
    if not outline:
        problems.append(f"{path.name}: no outline")
    return problems


def check_encrypted(path: Path) -> list[str]:
    import pdfplumber

    try:
        with pdfplumber.open(path) as pdf:
            pdf.pages[0].extract_text()
    except Exception as exc:  # pdfminer's PDFPasswordIncorrect, wrapped by pdfplumber
        print(f"  {path.name}: refuses to open without the password ({type(exc).__name__})")
        return check_pdf(path, PASSWORD)
    return [f"{path.name}: opens without a password"]


def check_docx(path: Path, mode: str) -> list[str]:
    """Show the heading paragraphs: text start, own or style numPr; auto labels must not be typed."""
    document = docx.Document(str(path))
    style_num = {
        s.style_id: s.element.pPr is not None and s.element.pPr.numPr is not None
        for s in document.styles
        if s.type == 1
    }
    problems, shown = [], 0
    headings = [p for p in document.paragraphs if p.style.style_id.startswith("Heading")]
    for par in headings:
        own = par._p.pPr is not None and par._p.pPr.numPr is not None
        via_style = style_num.get(par.style.style_id, False)
        level = int(par.style.style_id[-1])
        typed = bool((_LEVEL1_MARK if level == 1 else _LEVEL2_MARK).match(par.text))
        if mode != "typed" and level <= 2 and (typed or not (own or via_style)):
            problems.append(f"{path.name}: heading {par.text[:20]!r} typed={typed} numPr={own or via_style}")
        if shown < 3 or (level == 2 and shown < 4):
            src = "own numPr" if own else "style numPr" if via_style else "no numPr"
            print(f"    {par.style.name}: {src}: {par.text[:28]!r}")
            shown += 1
    print(
        f"  {path.name}: {mode}, {len(headings)} headings, "
        f"{sum(1 for p in headings if p._p.pPr is not None and p._p.pPr.numPr is not None)} with own numPr"
    )
    return problems


# ------------------------------------------------------------------------------------ main


README = """# Published fixtures (generated)

Reports as offices publish them, made by `scripts/make_published_fixtures.py` from the text files
listed in `sources.json` (id → text path relative to the repository, and how the heading labels are
written: `style` = Word auto-numbering inherited from the Heading 1/2 styles, `paragraph` = numPr on
each heading paragraph, `typed` = labels typed in the text).

- `<id>.docx`: python-docx, 公文 layout (A4, 仿宋_GB2312 16 pt body, 黑体 / 楷体_GB2312 headings,
  方正小标宋简体 title, running header with the title, "— PAGE —" footer).
- `<id>.pdf`: LibreOffice export of the DOCX with an outline; fonts mapped by fontconfig to Noto Serif
  CJK SC, Noto Sans CJK SC and AR PL UKai CN.
- `hengyang-2019-encrypted.pdf`: the seed PDF with an open password (`secret`).
- `hengyang-2019.doc`: the seed as a Word 97 file (LibreOffice).

Regenerate: `.venv/bin/python scripts/make_published_fixtures.py` (needs libreoffice-writer-nogui,
fonts-noto-cjk, fonts-arphic-ukai).
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("out", nargs="?", type=Path, default=DEFAULT_OUT, help="output directory")
    parser.add_argument("--ids", nargs="+", choices=[s.rid for s in SPECS], help="only these fixtures")
    args = parser.parse_args(argv)
    specs = [s for s in SPECS if not args.ids or s.rid in args.ids]
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)

    sources_path = out / "sources.json"
    sources = json.loads(sources_path.read_text(encoding="utf-8")) if sources_path.exists() else {}
    modes: dict[str, str] = {}
    for spec in specs:
        report, title = load(spec)
        modes[spec.rid] = build_docx(spec, report, title, out / f"{spec.rid}.docx")
        sources[spec.rid] = {"text": spec.text, "numbering": modes[spec.rid]}
        print(f"{spec.rid}.docx: {title} ({modes[spec.rid]})")
    order = [s.rid for s in SPECS]
    sources = {k: sources[k] for k in sorted(sources, key=lambda k: order.index(k) if k in order else len(order))}
    sources_path.write_text(json.dumps(sources, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    (out / "README.md").write_text(README, encoding="utf-8")

    with tempfile.TemporaryDirectory(prefix="published-fixtures-") as tmp:
        tmpdir = Path(tmp)
        conf = fonts_conf(tmpdir)
        convert([out / f"{s.rid}.docx" for s in specs], out, "pdf:writer_pdf_Export", conf)
        if any(s.rid == SEED for s in specs):
            secret = tmpdir / f"{SEED}-encrypted.docx"
            shutil.copy(out / f"{SEED}.docx", secret)
            options = {
                "EncryptFile": {"type": "boolean", "value": "true"},
                "DocumentOpenPassword": {"type": "string", "value": PASSWORD},
            }
            convert([secret], out, "pdf:writer_pdf_Export:" + json.dumps(options), conf)
            convert([out / f"{SEED}.docx"], out, "doc", conf)

    print("checks:")
    problems: list[str] = []
    for spec in specs:
        problems += check_docx(out / f"{spec.rid}.docx", modes[spec.rid])
        problems += check_pdf(out / f"{spec.rid}.pdf")
    if any(s.rid == SEED for s in specs):
        problems += check_encrypted(out / f"{SEED}-encrypted.pdf")
    total = 0
    for path in sorted(out.iterdir()):
        total += path.stat().st_size
        print(f"  {path.stat().st_size:>9,}  {path.name}")
    print(f"  {total:>9,}  total")
    for problem in problems:
        print(f"PROBLEM: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
