"""Report text → the tree of units its authors wrote (pure: no I/O, no globals changed).

    report = parse_report(text, meta)

Rules, in the order they are applied (all general; nothing depends on a file name):

1. Text. The BOM is dropped and CRLF/CR become LF; `Report.text` is that text and every offset in
   the tree points into it. A line's content is the line without surrounding whitespace (including
   ideographic spaces, no-break and zero-width spaces).
2. Page chrome is taken out before anything else and belongs to no paragraph:
   - anywhere: breadcrumbs (`当前位置:首页 > …`), `发布时间/来源/浏览量/字体/责任编辑/索引号…:` label
     lines, `扫一扫在手机打开当前页`, `相关阅读`/`相关报道`, `【打印】【我要纠错】…`, news datelines
     `（新华社…电）`, photo credits `记者 某某 摄`, attachment links `1．附件1：….doc`, bare
     `附件`/`附件一` labels, HTML comments, `# source:`/`# title:` metadata comments, URLs, app menus;
   - at the start, before the first line of content: the title line (kept as `parsed_title`; a
     `# title:` comment wins), a `——…` subtitle under it, and menu words (lines of at most 6
     characters without punctuation), e.g. `下载 打印 全屏 收藏 【字号：加大 还原 减小】`;
   - at the end: once a chrome line has been met from the end, short unpunctuated lines next to it
     (site menus, year pickers); then the signature block: a date line (`2020年3月17日`, ISO, or
     Chinese numerals) and the issuer line above it. The date is kept as `signed_date` (ISO).
3. Headings. A line is a heading when it starts with a numbering marker: `第X章/节/部分/篇/编`,
   `第X条`, `一、` (also `一．`/`一.`), `(一)`/`（一）`, `1.`/`1．`/`1、`, `(1)`/`（1）`, `①`, or is a
   Markdown heading `## …` (its own marker, if any, gives the style, else the `#` depth does).
   Not headings: `一是…二是…` (no marker), `一、二季度` (numeral after the marker), `1.5亿元`.
   An article (`第X条`) is the smallest unit of a regulation: numbered items inside an article are
   paragraphs of the article, not sections. An unnumbered heading (`2013年工作回顾`, `名词解释`) is a
   line of 4–30 characters without punctuation or inner spaces that is followed by a numbered
   heading or by a long sentence; it always sits at the top level.
4. Levels follow the nesting the document uses, not a fixed table: each marker style gets the depth at
   which it first appears under the styles open at that point; meeting a style that is open closes
   everything below it. So a report whose top level is `(一)` has those as level 1, a regulation
   has 第X章 → (第X节 →) 第X条, one without chapters has 第X条 at level 1.
5. Ids: dotted arabic numbers along the hierarchy from each marker's own number (`七、`→`7`, its
   `(一)`→`7.1`; `第二章`→`2`, its `第十条`→`2.10`; with sections `第二章 第一节 第十条`→`2.1.10`);
   unnumbered headings take their position among their siblings; the preamble is `0`. A repeated
   number gets `~2`, `~3`, … in document order (`3.2`, then `3.2~2`), so ids are unique and stable.
   Labels join the ancestors' markers (`七、(一)`; `第二章 第十条`, a space next to `第X…` markers),
   with full-width brackets written as ASCII `(一)`.
6. Titles: the heading text after the marker. Run-in headings `(一)标题。正文…` take the text up to
   the first 。/！/？ (within 60 characters) as title and the paragraph starts after it; a term
   heading `1.术语：释义` takes the text before the colon; a heading line without a sentence end is
   all title when it is at most 60 characters; a longer one keeps the whole line as its paragraph
   and takes as title the text up to the first ，/：/； (or its first 40 characters, with …).
   Articles have no title (an `【条旨】` is used when present); the whole article text is its body.
7. Paragraphs: one per remaining non-empty line; a line identical to the previous kept line is
   dropped. Sentences split after 。！？!? (runs of them, with closing quotes/brackets kept), and
   after ；when the next item starts `X是` (`一是…；二是…`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from retrieval.document import PARSER_VERSION as PARSER_VERSION  # re-exported; bump it in document.py
from retrieval.document import Paragraph, Report, ReportMeta, Section, Sentence

PREAMBLE_ID = "0"
PREAMBLE_TITLE = "前言"

# ------------------------------------------------------------------------------------ characters

_ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"
WS = "".join(chr(i) for i in range(0x3001) if chr(i).isspace()) + _ZERO_WIDTH
_CN_DIGITS = "零〇一二三四五六七八九两"
_CN_NUM = "一二三四五六七八九十百千零〇两"
_SENT_END = "。！？!?"
_CLOSERS = "”’」』）)】》〉\"'］]"

# ------------------------------------------------------------------------------------- patterns

_MD = re.compile(r"^(#{1,6})[ \t\u3000]+(?=\S)")
_DI = re.compile(rf"^第([{_CN_NUM}\d]{{1,6}})(章|节|部分|篇|编|条)")
_CN_DUN = re.compile(rf"^([{_CN_NUM}]{{1,4}})[、．.](?![{_CN_NUM}])")
_CN_PAREN = re.compile(rf"^[（(]([{_CN_NUM}]{{1,4}})[)）]")
_AR = re.compile(r"^(\d{1,3})[.．、](?![.．、])(?!(?!\d{4}年)\d)")  # 1.5亿 no, 2．2015年… yes
_AR_PAREN = re.compile(r"^[（(](\d{1,3})[)）]")
_CIRCLED = re.compile(r"^([①-⑳])")
_ARTICLE_TITLE = re.compile(r"^【([^】]{1,30})】")

_RUN_IN_END = re.compile(r"[。！？!?]")
_COLON = re.compile(r"[：:]")
_SOFT_BREAK = re.compile(r"[，,：:；;]")
_SENTENCE = re.compile(rf"[。！？!?]+[{re.escape(_CLOSERS)}]*|；(?=[{WS}]*[{_CN_NUM}]{{1,3}}是)")

_CHROME_LABEL = re.compile(  # page metadata labels, chrome on a line of up to 80 characters
    r"^(?:发布时间|发布日期|发文日期|成文日期|更新时间|信息来源|文章来源|浏览量|浏览次数|访问量|阅读量|"
    r"点击数|点击量|责任编辑|字体|字号|索引号|发布机构|发文机关|主题分类|体裁分类|组配分类|文号|主题词|"
    r"有效性)[ \t\u3000\xa0]*[:：]"
)
_CHROME_LABEL_SHORT = re.compile(  # generic labels: chrome only on a short line without a sentence
    r"^(?:来源|时间|日期|作者|编辑|分类|名称)[ \t\u3000\xa0]*[:：]"
)
_CHROME_ANY = re.compile(
    r"^(?:当前位置[ \t\u3000\xa0]*[:：]|您(?:当前|现在)?的?位置[:：]|"
    r"【(?:打印|关闭|字号|字体|我要纠错|纠错|收藏|分享|返回|大)|"
    r"相关(?:阅读|报道|链接|文章|新闻|文件)[:：]?$|(?:打印本页|关闭窗口|返回顶部|分享到|下载文字版|下载图片版|登录注册|"
    r"返回手机版|版权所有|主办单位|您正在浏览)|https?://\S*$|<!--.*-->$|#[ \t]*(?:source|title)[ \t]*:|"
    r"附件[\d一二三四五六七八九十]*[:：]?$|[（(]?新华社[^。]{0,24}电[)）]?$)"
)
_CHROME_CONTAINS = re.compile(
    r"扫一扫在手机(?:上)?打开当前页|云适配|记者[ \t\u3000\xa0]*\S{2,4}[ \t\u3000\xa0]*摄[)）]?$"
)
_META_COMMENT = re.compile(r"^#[ \t]*(?:source|title)[ \t]*:")
_MENU = "下载|打印|收藏|分享|关闭|全屏|返回|加大|减小|还原|默认|大|中|小"
_MENU_WORDS = re.compile(rf"^【?(?:{_MENU})(?:[、，,\s|｜/】【]*(?:{_MENU}))*】?$")
_BREADCRUMB = re.compile(r"^(?:[^>＞»]{1,24}[>＞»]){2,}")
_ATTACHMENT = re.compile(
    r"\.(?:docx?|xlsx?|pptx?|pdf|jpe?g|png|gif|wps|et|zip|rar|7z|ofd|txt|ceb)[ \t\u3000\xa0]*$", re.IGNORECASE
)
_ATTACHMENT_LABEL = re.compile(r"^附件[\d一二三四五六七八九十]*[:：]?$")
_TAIL_ATTACHMENT_REF = re.compile(r"^附件[ \t\u3000\xa0]*[\d一二三四五六七八九十]*[ \t\u3000\xa0]*[:：]")
_MENU_BAR = re.compile(r"[|｜]")
_PUNCT = re.compile(r"[。！？!?；;：:，,]")
_STRONG_PUNCT = re.compile(r"[。！？!?；;]")
_INNER_SPACE = re.compile(rf"[{WS}]")
_CJK = re.compile(r"[\u3400-\u9fff]")
_DOC_TITLE = re.compile(
    r"(?:报告|条例|规定|办法|决定|意见|通知|公告|纲要|方案|规划|公报|讲话|说明|细则|决议|通报|白皮书)"
    r"(?:[（(][^（()）]{0,40}[)）])?$"
)
_DATE_CN = re.compile(
    rf"^([\d{_CN_DIGITS}]{{4}})[ \t\u3000\xa0]*年[ \t\u3000\xa0]*([\d{_CN_NUM}]{{1,3}})[ \t\u3000\xa0]*月"
    rf"[ \t\u3000\xa0]*([\d{_CN_NUM}]{{1,3}})[ \t\u3000\xa0]*日$"
)
_DATE_ISO = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$")
_BRACKETED = re.compile(r"[（(][^（()）]*[)）]")
_COMMENT_TITLE = re.compile(r"^#[ \t]*title[ \t]*:[ \t]*(.*)$")

_ARTICLE_STYLES = frozenset({"章", "节", "部分", "篇", "编", "条"})  # may open inside an article
_CHROME_MAX = 200  # chrome lines are short; longer lines are content whatever they start with


# ---------------------------------------------------------------------------------------- lines


@dataclass
class _Line:
    start: int  # offset of the content (line without surrounding whitespace) in the text
    end: int
    text: str


@dataclass
class _Heading:
    style: str  # "章", "条", "cn_dun", "cn_paren", "ar", "ar_paren", "circled", "md2", "plain" …
    number: int | None  # the marker's own number; None: position among siblings
    marker: str  # label part, normalised: "七、", "(一)", "第二章", "" for unnumbered
    title: str
    body_start: int | None  # offset of the run-in body in the text, None when the line is all heading
    body_end: int


def _content_lines(text: str) -> list[_Line]:
    lines: list[_Line] = []
    pos = 0
    for raw in text.split("\n"):
        stripped = raw.strip(WS)
        if stripped:
            start = pos + (len(raw) - len(raw.lstrip(WS)))
            lines.append(_Line(start, start + len(stripped), stripped))
        pos += len(raw) + 1
    return lines


# -------------------------------------------------------------------------------------- numbers


def cn_to_int(s: str) -> int | None:
    """Chinese (or arabic) numeral → int: 七→7, 十→10, 二十一→21, 一百零五→105, 2→2."""
    if s.isdigit():
        return int(s)
    digits = {c: i for i, c in enumerate("零一二三四五六七八九")}
    digits.update({"〇": 0, "两": 2})
    units = {"十": 10, "百": 100, "千": 1000}
    if all(c in digits for c in s):  # positional: 二〇二〇
        return int("".join(str(digits[c]) for c in s)) if s else None
    total, current = 0, 0
    for c in s:
        if c in digits:
            current = digits[c]
        elif c in units:
            total += (current or 1) * units[c]
            current = 0
        else:
            return None
    return total + current


def parse_date(line: str) -> str | None:
    """`2020年3月17日` / `二〇二〇年三月十七日` / `2020-03-17` (the whole line) → ISO date, else None."""
    s = line.strip(WS)
    m = _DATE_CN.match(s) or _DATE_ISO.match(s)
    if not m:
        return None
    y, mo, d = (cn_to_int(g) for g in m.groups())
    if y is None or mo is None or d is None or not (1 <= mo <= 12 and 1 <= d <= 31 and 1000 <= y <= 2999):
        return None
    return f"{y:04d}-{mo:02d}-{d:02d}"


# --------------------------------------------------------------------------------------- chrome


def _is_chrome(s: str) -> bool:
    if _META_COMMENT.match(s):
        return True
    if len(s) > _CHROME_MAX:
        return False
    if _MENU_WORDS.match(s):
        return True
    if _CHROME_ANY.match(s) or _CHROME_CONTAINS.search(s):
        return True
    if len(s) <= 80 and _CHROME_LABEL.match(s):
        return True
    if len(s) <= 30 and _CHROME_LABEL_SHORT.match(s) and not _STRONG_PUNCT.search(s):
        return True
    if _BREADCRUMB.match(s) and not _STRONG_PUNCT.search(s):
        return True
    if _ATTACHMENT.search(s) and not _STRONG_PUNCT.search(s[:-8]):
        return True
    return bool(
        len(s) <= 60 and _MENU_BAR.search(s) and not s.startswith(("|", "｜")) and not _PUNCT.search(s)
    )


def _is_weak(s: str, limit: int) -> bool:
    """A short line without punctuation and without a numbering marker: menu words and the like."""
    return len(s) <= limit and not _PUNCT.search(s) and _classify(s) is None and parse_date(s) is None


def _is_title(s: str) -> bool:
    """A document title line: short, no punctuation outside brackets, ends with 报告/条例/办法 …"""
    if len(s) > 60 or not _CJK.search(s) or not _DOC_TITLE.search(s) or _classify(s) is not None:
        return False
    return not _PUNCT.search(_BRACKETED.sub("", s))


# ------------------------------------------------------------------------------------- headings


def _classify(s: str) -> tuple[str, int | None, str, int] | None:
    """(style, number, marker label, length of the marker) for a line that starts with a marker."""
    md = _MD.match(s)
    if md:
        inner = _classify(s[md.end() :])
        if inner is not None:
            style, number, marker, length = inner
            return style, number, marker, md.end() + length
        return f"md{len(md.group(1))}", None, "", md.end()
    m = _DI.match(s)
    if m:
        unit = m.group(2)
        rest = s[m.end() :]
        if unit == "条" and rest and not (rest[0] in WS or rest[0] == "【"):
            return None  # "第三条规定…" is a sentence, an article marker is followed by a space
        return unit, cn_to_int(m.group(1)), f"第{m.group(1)}{unit}", m.end()
    m = _CN_DUN.match(s)
    if m:
        marker = m.group(0).replace("．", ".")
        return "cn_dun", cn_to_int(m.group(1)), marker, m.end()
    m = _CN_PAREN.match(s)
    if m:
        return "cn_paren", cn_to_int(m.group(1)), f"({m.group(1)})", m.end()
    m = _AR.match(s)
    if m:
        return "ar", int(m.group(1)), m.group(0).replace("．", "."), m.end()
    m = _AR_PAREN.match(s)
    if m:
        return "ar_paren", int(m.group(1)), f"({m.group(1)})", m.end()
    m = _CIRCLED.match(s)
    if m:
        return "circled", ord(m.group(1)) - ord("①") + 1, m.group(1), m.end()
    return None


def _is_plain_candidate(s: str) -> bool:
    return (
        4 <= len(s) <= 30
        and not _PUNCT.search(s)
        and not _INNER_SPACE.search(s)
        and len(_CJK.findall(s)) >= 2
        and _classify(s) is None
        and parse_date(s) is None
    )


def _split_title(rest: str, offset: int) -> tuple[str, int | None, int]:
    """(title, body start, body end) for the text after a marker starting at `offset`."""
    lead = len(rest) - len(rest.lstrip(WS))
    r = rest[lead:]
    start = offset + lead
    end = offset + len(rest)
    if not r:
        return "", None, end
    window = r[:61]
    stop = _RUN_IN_END.search(window)
    colon = _COLON.search(window)
    if colon and colon.start() <= 30 and (stop is None or colon.start() < stop.start()) and colon.start() > 0:
        return _clean_title(r[: colon.start()]), _body_start(r, colon.end(), start), end
    if stop and stop.start() > 0:
        return _clean_title(r[: stop.start()]), _body_start(r, stop.end(), start), end
    if len(r) <= 60:
        return _clean_title(r), None, end
    soft = _SOFT_BREAK.search(r[:41])
    title = r[: soft.start()] if soft and soft.start() > 0 else r[:40] + "…"
    return _clean_title(title), start, end


def _body_start(r: str, cut: int, start: int) -> int | None:
    while cut < len(r) and r[cut] in _CLOSERS:  # 标题。” → the quote stays with the title
        cut += 1
    body = r[cut:]
    lead = len(body) - len(body.lstrip(WS))
    return start + cut + lead if body.strip(WS) else None


def _clean_title(t: str) -> str:
    return t.strip(WS).rstrip("，,；;：:、").strip(WS)


def _heading(line: _Line, cls: tuple[str, int | None, str, int], in_article: bool) -> _Heading | None:
    style, number, marker, length = cls
    if in_article and style not in _ARTICLE_STYLES and not style.startswith("md"):
        return None
    rest = line.text[length:]
    offset = line.start + length
    if style == "条":
        lead = len(rest) - len(rest.lstrip(WS))
        body = rest[lead:]
        title = ""
        m = _ARTICLE_TITLE.match(body)
        if m:
            title = m.group(1).strip(WS)
            after = body[m.end() :]
            lead += m.end() + (len(after) - len(after.lstrip(WS)))
            body = after.lstrip(WS)
        return _Heading(style, number, marker, title, offset + lead if body else None, line.end)
    title, body_start, body_end = _split_title(rest, offset)
    return _Heading(style, number, marker, title, body_start, body_end)


# ------------------------------------------------------------------------------------ sentences


def split_sentences(text: str, offset: int = 0) -> list[Sentence]:
    """Sentences of `text` (whose first character is at `offset` in the report text)."""
    out: list[Sentence] = []
    append = out.append
    pos = 0
    bounds = [m.end() for m in _SENTENCE.finditer(text)]
    bounds.append(len(text))
    for end in bounds:
        piece = text[pos:end]
        stripped = piece.strip(WS)
        if stripped:
            start = offset + pos + (piece.index(stripped[0]) if piece[0] in WS else 0)
            append(Sentence(stripped, start, start + len(stripped)))
        pos = end
    return out


# ---------------------------------------------------------------------------------------- parse


def normalize_text(text: str) -> str:
    """What `Report.text` holds: no BOM, LF line ends."""
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n")


def parse_report(text: str, meta: ReportMeta) -> Report:
    """Parse report text into its section tree (see the module docstring for the rules)."""
    text = normalize_text(text)
    lines = _content_lines(text)
    keep = [True] * len(lines)
    parsed_title: str | None = None
    signed_date: str | None = None

    for line in lines[:20]:  # metadata comments sit at the top
        m = _COMMENT_TITLE.match(line.text)
        if m and m.group(1).strip(WS):
            parsed_title = m.group(1).strip(WS)
            break

    in_attachments = False  # the numbered list under an `附件：` label names attached files
    for i, line in enumerate(lines):
        s = line.text
        if _is_chrome(s):
            keep[i] = False
            in_attachments = bool(_ATTACHMENT_LABEL.match(s)) or (
                in_attachments and bool(_ATTACHMENT.search(s))
            )
        elif in_attachments and len(s) <= 80 and _classify(s) is not None and not _STRONG_PUNCT.search(s):
            keep[i] = False
        else:
            in_attachments = False

    # the head: title line, subtitle, menu words — up to the first line of content
    found_title = False
    for i, line in enumerate(lines):
        if not keep[i]:
            continue
        s = line.text
        md = _MD.match(s)
        if not found_title and md and len(md.group(1)) == 1 and _classify(s[md.end() :]) is None:
            found_title = True
            parsed_title = parsed_title or s[md.end() :].strip(WS)
        elif not found_title and _is_title(s):
            found_title = True
            parsed_title = parsed_title or s
        elif (
            found_title and s.startswith(("——", "—", "--")) and len(s) <= 120 and not _STRONG_PUNCT.search(s)
        ):
            pass  # subtitle under the title
        elif _is_weak(s, 6):
            pass
        else:
            break
        keep[i] = False

    # the tail: residue next to chrome, then the signature block
    seen_chrome = False
    last = len(lines) - 1
    while last >= 0:
        s = lines[last].text
        if not keep[last]:
            seen_chrome = True
        elif _TAIL_ATTACHMENT_REF.match(s) and len(s) <= 60 and not _STRONG_PUNCT.search(s):
            seen_chrome = True
            keep[last] = False
        elif seen_chrome and "\t" not in s and _is_weak(s, 30):
            keep[last] = False
        else:
            break
        last -= 1
    if last >= 0:
        date = parse_date(lines[last].text)
        if date:
            signed_date = date
            keep[last] = False
            prev = last - 1
            while prev >= 0 and not keep[prev]:
                prev -= 1
            if prev >= 0:
                s = lines[prev].text
                if len(s) <= 30 and not _PUNCT.search(s) and _CJK.search(s) and _classify(s) is None:
                    keep[prev] = False

    body_lines: list[_Line] = []
    previous: str | None = None
    for i, line in enumerate(lines):
        if keep[i] and line.text != previous:
            body_lines.append(line)
            previous = line.text

    sections = _build_tree(body_lines)
    return Report(meta=meta, text=text, sections=sections, signed_date=signed_date, parsed_title=parsed_title)


# ----------------------------------------------------------------------------------------- tree


def _build_tree(lines: list[_Line]) -> list[Section]:
    preamble = Section(PREAMBLE_ID, "", PREAMBLE_TITLE, 0, 0, 0)
    top: list[Section] = []
    stack: list[tuple[str, Section]] = []
    used: set[str] = {PREAMBLE_ID}
    markers: dict[str, str] = {}
    classes = [_classify(line.text) for line in lines]
    any_heading = False

    for i, line in enumerate(lines):
        in_article = bool(stack) and stack[-1][0] == "条"
        head: _Heading | None = None
        if classes[i] is not None:
            head = _heading(line, classes[i], in_article)  # type: ignore[arg-type]
        elif not in_article and _is_plain_candidate(line.text) and _plain_context(lines, classes, i):
            head = _Heading("plain", None, "", line.text, None, line.end)
        if head is None:
            target = stack[-1][1] if stack else preamble
            _add_paragraph(target, text=line.text, start=line.start)
            continue

        any_heading = True
        styles = [s for s, _ in stack]
        if head.style in styles:
            while stack[-1][0] != head.style:
                stack.pop()
            stack.pop()
        elif head.style == "plain":
            stack.clear()
        parent = stack[-1][1] if stack else None
        siblings = parent.children if parent else top
        number = head.number if head.number is not None else len(siblings) + 1
        base = f"{parent.section_id}.{number}" if parent else str(number)
        sid = base
        n = 1
        while sid in used:
            n += 1
            sid = f"{base}~{n}"
        used.add(sid)
        label = _join_label(
            parent.label if parent else "", markers.get(parent.section_id, "") if parent else "", head.marker
        )
        markers[sid] = head.marker
        sec = Section(sid, label, head.title, len(stack) + 1, line.start, line.end)
        siblings.append(sec)
        stack.append((head.style, sec))
        if head.body_start is not None:
            body = line.text[head.body_start - line.start : head.body_end - line.start]
            _add_paragraph(sec, text=body, start=head.body_start)

    sections: list[Section] = []
    if preamble.paragraphs or not any_heading:
        sections.append(preamble)
    sections.extend(top)
    for sec in sections:
        _finish(sec)
    if preamble.paragraphs:
        preamble.start = preamble.paragraphs[0].start
        preamble.end = preamble.paragraphs[-1].end
    return sections


def _plain_context(lines: list[_Line], classes: list, i: int) -> bool:
    """An unnumbered heading comes after a finished sentence (or a heading, or nothing) and before a
    numbered heading or a long sentence — not inside a table of short cells."""
    if i > 0 and classes[i - 1] is None:
        prev = lines[i - 1].text.rstrip(_CLOSERS)
        if not prev or prev[-1] not in "。！？!?：:；;":
            return False
    if i + 1 >= len(lines):
        return False
    nxt = lines[i + 1].text
    if classes[i + 1] is not None:
        return True
    return len(nxt) > 30 and bool(_RUN_IN_END.search(nxt)) and not _is_plain_candidate(nxt)


def _join_label(parent_label: str, parent_marker: str, marker: str) -> str:
    if not parent_label:
        return marker
    if not marker:
        return parent_label
    sep = " " if parent_marker.startswith("第") or marker.startswith("第") else ""
    return f"{parent_label}{sep}{marker}"


def _add_paragraph(sec: Section, *, text: str, start: int) -> None:
    para = Paragraph(
        text=text,
        start=start,
        end=start + len(text),
        sentences=split_sentences(text, start),
        section_id=sec.section_id,
        index=len(sec.paragraphs),
    )
    sec.paragraphs.append(para)


def _finish(sec: Section) -> int:
    """Set `end` to the end of the unit, children included; returns it."""
    end = sec.end
    if sec.paragraphs:
        end = max(end, sec.paragraphs[-1].end)
    for child in sec.children:
        end = max(end, _finish(child))
    sec.end = end
    return end
