"""What the Telegram bot says: pure functions from answers, sections and reports to HTML + keyboards.

No I/O and no Bot calls here, so every message the bot can send is testable without a network.
Telegram's rules that shape this module (see ../shared/notes/telegram.md):
- a message is at most 4096 characters (UTF-16 units); long texts are split at paragraph or
  sentence boundaries into numbered parts, and each part is escaped on its own, so a tag never
  spans two parts;
- HTML parse mode needs `<`, `>`, `&` escaped; `html_to_plain` gives the fallback text if Telegram
  still rejects the HTML;
- callback_data is 1–64 bytes: buttons carry short ids (question-log row, report key, section
  id), never question text, so they keep working after a restart.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InlineQueryResultArticle, InputTextMessageContent
from telegram.constants import ParseMode

from retrieval.answer import Answer, Hit, citation
from retrieval.document import ReportMeta, Section
from retrieval.followup import INCOMPLETE

MESSAGE_LIMIT = 4096  # Telegram's limit, UTF-16 units of the visible text
PART_LIMIT = 4000  # what we allow for the raw HTML of one part: below the limit with tags counted
CALLBACK_DATA_LIMIT = 64  # bytes
PASSAGE_WINDOW = 700  # characters of the top passage shown around the highlight
QUESTION_ECHO = 120  # characters of the question repeated in the reply
BUTTON_LABEL = 36  # characters of a section label on a button
REPORTS_PER_PAGE = 8
INLINE_RESULTS = 5

EXAMPLE_QUESTIONS = (
    "2019年衡阳调解了多少矛盾纠纷？",
    "衡阳市政务中心集中办理了多少项服务事项？",
    "国家工作人员学法考试的通过率是多少？",
)

EXPIRED = "这个按钮已失效（可能是机器人升级或记录已清理），请重新提问。"
NOT_COVERED = "报告中没有找到能回答这个问题的内容。"
RATE_LIMITED = "您提问太频繁了，请约 {seconds} 秒后再问。"
TOO_LONG = "问题太长了（{length} 字），请精简到 {limit} 字以内再问。"
EMPTY_QUESTION = "请在 /ask 后面写上您的问题，例如：/ask {example}"
NON_TEXT = "我只能回答文字问题。请用文字发送您想了解的内容，例如：{example}"
NO_MORE = "没有更多结果了。"
FAILED = "抱歉，处理这个问题时出错了，请稍后再试。"
UNUSABLE_QUESTION = "这个问题无法处理（{detail}），请用文字重新描述您的问题。"
SECTION_MISSING = "没有找到这个章节，请用 /sections 浏览目录。"
ASK_BACK = "您问的是哪个地区？请选择："
RESET_DONE = "好的，已忘记之前的对话；下一个问题重新开始。"
SCOPE_SET = "好的，之后的问题只在{label}中查找。发送 /report all 恢复全部报告。"
SCOPE_ALL = "好的，之后的问题在全部报告中查找。"
SCOPE_PROMPT = "请选择要查询的地区或报告（当前：{current}）："
THANKS = "感谢反馈！"

# English labels for an English question (or a chat set to /lang en); passages and citations stay
# as published. Keys are the Chinese texts above and the labels used below.
EN = {
    NOT_COVERED: "The reports do not cover this.",
    NO_MORE: "No more results.",
    ASK_BACK: "Which region do you mean? Please choose:",
    THANKS: "Thanks for the feedback!",
    "出处": "Source",
    "其他相关段落": "Other passages",
    "理解为": "Understood as",
    "范围": "Scope",
    "page": "(page {page})",
    "nearest": "The nearest sections, tap to open:",
    "retry": "Please rephrase, or browse the outline with /sections.",
    "历年情况": "📈 By year ({n} years):",
    "👍 有帮助": "👍 Helpful",
    "👎 没帮助": "👎 Not helpful",
    "voted+": "Recorded: 👍 helpful, thank you!",
    "voted-": "Recorded: 👎 not helpful, we will improve.",
    "📄 全文": "📄 Full section",
    "更多结果 ▶": "More results ▶",
    "◀ 上一页": "◀ Previous",
}
LANG_SET = {
    "en": "OK, replies in this chat are now in English. /lang zh switches back, /lang auto follows each question.",
    "zh": "好的，本聊天之后用中文回复。/lang en 切换为英文，/lang auto 跟随每个问题的语言。",
    "auto": "OK / 好的: replies follow each question's language (英文问题英文回复，中文问题中文回复).",
}
LANG_USAGE = "用法 (usage): /lang en | zh | auto"


def t(text: str, lang: str) -> str:
    """A label in the reply's language: the Chinese text, or its English version when lang is "en"."""
    return EN.get(text, text) if lang == "en" else text


def escape(text: str) -> str:
    """Escape text for Telegram HTML (quotes need no escaping outside attributes)."""
    return html.escape(text, quote=False)


def utf16_len(text: str) -> int:
    """Length as Telegram counts it: an emoji outside the BMP is two units."""
    return len(text.encode("utf-16-le")) // 2


def shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


_TAG = re.compile(r"<[^>]*>")


def html_to_plain(html_text: str) -> str:
    """The same message without markup: the fallback when Telegram rejects our HTML."""
    return html.unescape(_TAG.sub("", html_text))


# --------------------------------------------------------------------------- callback data


def report_key(report_id: str) -> str:
    """A fixed-width key for a report id: ids can be long, callback_data has 64 bytes."""
    return hashlib.sha1(report_id.encode("utf-8")).hexdigest()[:8]


@dataclass(frozen=True)
class MorePage:
    """Show page `page` of the answer to logged question `row`."""

    row: int
    page: int


@dataclass(frozen=True)
class Vote:
    row: int
    helpful: bool


@dataclass(frozen=True)
class FullSection:
    report_key: str
    section_id: str


@dataclass(frozen=True)
class Browse:
    """A node of the /sections tree; section_id "" is the report's table of contents."""

    report_key: str
    section_id: str


@dataclass(frozen=True)
class ReportsPage:
    page: int


@dataclass(frozen=True)
class Example:
    index: int


@dataclass(frozen=True)
class Noop:
    """A button that only shows a state (e.g. a recorded vote)."""


@dataclass(frozen=True)
class YearAsk:
    """Ask logged question `row` again for one year (the year buttons under an answer)."""

    row: int
    year: int


@dataclass(frozen=True)
class AskRegion:
    """Answer logged question `row` in one region (the buttons of an ask-back)."""

    row: int
    region: str


@dataclass(frozen=True)
class ScopeRegion:
    """/report: restrict the chat to one region."""

    region: str


@dataclass(frozen=True)
class ScopeReport:
    """/report: restrict the chat to one report."""

    report_key: str


@dataclass(frozen=True)
class ScopeAll:
    """/report all: every report again."""


CallbackAction = (
    MorePage | Vote | FullSection | Browse | ReportsPage | Example | Noop | YearAsk | AskRegion | ScopeRegion
    | ScopeReport | ScopeAll
)

_SID = r"\d{1,4}(?:\.\d{1,4}){0,8}"
_DECODERS: tuple[tuple[re.Pattern[str], object], ...] = (
    (re.compile(r"m:(\d{1,15}):(\d{1,4})"), lambda m: MorePage(int(m[1]), int(m[2]))),
    (re.compile(r"v:(\d{1,15}):([ud])"), lambda m: Vote(int(m[1]), m[2] == "u")),
    (re.compile(rf"f:([0-9a-f]{{8}}):({_SID})"), lambda m: FullSection(m[1], m[2])),
    (re.compile(rf"b:([0-9a-f]{{8}}):((?:{_SID})?)"), lambda m: Browse(m[1], m[2])),
    (re.compile(r"r:(\d{1,4})"), lambda m: ReportsPage(int(m[1]))),
    (re.compile(r"q:(\d{1,2})"), lambda m: Example(int(m[1]))),
    (re.compile(r"n"), lambda m: Noop()),
    (re.compile(r"y:(\d{1,15}):((?:19|20)\d{2})"), lambda m: YearAsk(int(m[1]), int(m[2]))),
    (re.compile(r"g:(\d{1,15}):(\w{1,12})"), lambda m: AskRegion(int(m[1]), m[2])),
    (re.compile(r"sg:(\w{1,12})"), lambda m: ScopeRegion(m[1])),
    (re.compile(r"sr:([0-9a-f]{8})"), lambda m: ScopeReport(m[1])),
    (re.compile(r"sa"), lambda m: ScopeAll()),
)


def encode_callback(action: CallbackAction) -> str:
    """callback_data for an action; ValueError if it would exceed Telegram's 64 bytes."""
    match action:
        case MorePage(row, page):
            data = f"m:{row}:{page}"
        case Vote(row, helpful):
            data = f"v:{row}:{'u' if helpful else 'd'}"
        case FullSection(key, sid):
            data = f"f:{key}:{sid}"
        case Browse(key, sid):
            data = f"b:{key}:{sid}"
        case ReportsPage(page):
            data = f"r:{page}"
        case Example(index):
            data = f"q:{index}"
        case Noop():
            data = "n"
        case YearAsk(row, year):
            data = f"y:{row}:{year}"
        case AskRegion(row, region):
            data = f"g:{row}:{region}"
        case ScopeRegion(region):
            data = f"sg:{region}"
        case ScopeReport(key):
            data = f"sr:{key}"
        case ScopeAll():
            data = "sa"
        case _:
            raise TypeError(f"not a callback action: {action!r}")
    if len(data.encode("utf-8")) > CALLBACK_DATA_LIMIT:
        raise ValueError(f"callback_data over {CALLBACK_DATA_LIMIT} bytes: {data!r}")
    return data


def decode_callback(data: str | None) -> CallbackAction | None:
    """The action behind a button, or None for data this version does not understand (expired)."""
    if not data:
        return None
    for pattern, build in _DECODERS:
        m = pattern.fullmatch(data)
        if m:
            return build(m)  # type: ignore[operator]
    return None


def _button(label: str, action: CallbackAction) -> InlineKeyboardButton:
    return InlineKeyboardButton(label, callback_data=encode_callback(action))


# --------------------------------------------------------------------------- answers


def _passage_html(hit: Hit, window: int = PASSAGE_WINDOW) -> str:
    """The paragraph with the answer sentence in <b>, trimmed to a window around it."""
    text = hit.text
    start, end = hit.highlight_start, hit.highlight_end
    if not (0 <= start <= end <= len(text)) or text[start:end] != hit.highlight:
        found = text.find(hit.highlight) if hit.highlight else -1
        start, end = (found, found + len(hit.highlight)) if found >= 0 else (0, 0)
    lo, hi = 0, len(text)
    if hi - lo > window:
        spare = max(window - (end - start), 0)
        lo = max(0, start - spare // 2)
        hi = min(len(text), max(end, lo + window))
        lo = max(0, min(lo, hi - window))
    head = ("…" if lo > 0 else "") + text[lo:start]
    mid = text[max(start, lo) : min(end, hi)]
    tail = text[end:hi] + ("…" if hi < len(text) else "")
    if not mid:
        return escape(head + tail)
    return f"{escape(head)}<b>{escape(mid)}</b>{escape(tail)}"


def _hit_citation(hit: Hit) -> str:
    return hit.citation or citation(hit.report_title, hit.section_label, hit.section_title)


def _context_lines(answer: Answer, scope: str | None) -> list[str]:
    """How a follow-up was understood, and the chat's scope, under the question."""
    lines = []
    colon = ": " if answer.lang == "en" else "："
    if answer.understood_as and answer.understood_as != answer.question:
        lines.append(f"🔎 {t('理解为', answer.lang)}{colon}{escape(shorten(answer.understood_as, QUESTION_ECHO))}")
    if scope:
        lines.append(f"📍 {t('范围', answer.lang)}{colon}{escape(scope)}")
    return lines


def render_answer(answer: Answer, page: int = 0, page_size: int = 3, scope: str | None = None) -> str:
    """One answer page: the top hit's passage with the answer in bold, its citation, then up to
    page_size-1 further hits as short citations. Numbers continue across pages."""
    hits = answer.hits[:page_size]
    lang = answer.lang
    if not hits:
        return escape(t(NO_MORE, lang))
    first = page * page_size + 1
    top = hits[0]
    lines = [f"❓ {escape(shorten(answer.question, QUESTION_ECHO))}", *_context_lines(answer, scope), ""]
    if answer.note and page == 0:
        lines += [f"ℹ️ {escape(answer.note)}", ""]
    lines.append(f"<blockquote>{_passage_html(top)}</blockquote>")
    date = f"（{escape(top.report_date)}）" if top.report_date else ""
    colon = ": " if lang == "en" else "："
    lines.append(f"📄 {first}. {t('出处', lang)}{colon}<b>{escape(_hit_citation(top))}</b>{date}")
    if len(hits) > 1:
        lines.append("")
        lines.append(f"{t('其他相关段落', lang)}{colon}".rstrip())
        for n, hit in enumerate(hits[1:], start=first + 1):
            snippet = shorten(hit.highlight or hit.text, 60)
            lines.append(f"{n}. {escape(_hit_citation(hit))}\n    {escape(snippet)}")
    if page > 0:
        lines.append("")
        lines.append(EN["page"].format(page=page + 1) if lang == "en" else f"（第 {page + 1} 页）")
    return "\n".join(lines)


def render_not_covered(answer: Answer, scope: str | None = None) -> str:
    """One sentence (and the coverage note); the nearest sections come as buttons (`not_covered_keyboard`)."""
    if answer.lang == "en":
        tail = " " + (EN["nearest"] if answer.hits else EN["retry"])
    else:
        tail = "下面是最接近的章节，可点开查看：" if answer.hits else "请换个说法再试，或用 /sections 浏览目录。"
    note = f"\n\nℹ️ {escape(answer.note)}" if answer.note else ""
    if answer.followup == INCOMPLETE:  # a follow-up with nothing to follow: the note says what to do
        return f"❓ {escape(shorten(answer.question, QUESTION_ECHO))}{note}"
    context = "".join(f"\n{line}" for line in _context_lines(answer, scope))
    return (f"❓ {escape(shorten(answer.question, QUESTION_ECHO))}{context}{note}\n\n"
            f"{t(NOT_COVERED, answer.lang)}{tail}")


def ask_back_view(answer: Answer, row: int) -> tuple[str, InlineKeyboardMarkup]:
    """One short question and a button per candidate region; a tap answers the question there."""
    lines = [f"❓ {escape(shorten(answer.question, QUESTION_ECHO))}", *_context_lines(answer, None), "",
             t(ASK_BACK, answer.lang)]
    buttons = []
    for region in answer.ambiguous or ():
        try:
            buttons.append(_button(region, AskRegion(row, region)))
        except ValueError:  # a name too long for callback_data: not offered
            continue
    return "\n".join(lines), InlineKeyboardMarkup([buttons[i : i + 3] for i in range(0, len(buttons), 3)])


def scope_view(metas: Sequence[ReportMeta], regions: Sequence[str], current: str | None,
               limit: int = REPORTS_PER_PAGE) -> tuple[str, InlineKeyboardMarkup]:
    """/report: the regions and (the first) reports as buttons, and 全部报告."""
    rows = []
    region_buttons = []
    for region in regions:
        try:
            region_buttons.append(_button(f"📍 {region}", ScopeRegion(region)))
        except ValueError:
            continue
    rows += [region_buttons[i : i + 3] for i in range(0, len(region_buttons), 3)]
    rows += [[_button(shorten(m.title, BUTTON_LABEL), ScopeReport(report_key(m.report_id)))] for m in metas[:limit]]
    rows.append([_button("📚 全部报告", ScopeAll())])
    return escape(SCOPE_PROMPT.format(current=current or "全部报告")), InlineKeyboardMarkup(rows)


def render_timeline_parts(answer: Answer, limit: int = PART_LIMIT) -> list[str]:
    """A question across years: one line per year (its answer sentence in bold, then its citation),
    oldest first, split into messages under Telegram's limit at year boundaries."""
    head = [f"❓ {escape(shorten(answer.question, QUESTION_ECHO))}", ""]
    if answer.note:
        head += [f"ℹ️ {escape(answer.note)}", ""]
    n = len(answer.timeline or [])
    head.append(EN["历年情况"].format(n=n) if answer.lang == "en" else f"📈 历年情况（{n} 年）：")
    blocks = []
    for hit in answer.timeline or []:
        year = f"{hit.period}年" if hit.period else "—"
        sentence = escape(shorten(hit.highlight or hit.text, 300))
        blocks.append(f"<b>{year}</b>：{sentence}\n    📄 {escape(_hit_citation(hit))}")
    parts: list[str] = []
    current = "\n".join(head)
    for block in blocks:
        if utf16_len(current) + 2 + utf16_len(block) > limit:
            parts.append(current)
            current = block
        else:
            current = f"{current}\n\n{block}"
    parts.append(current)
    return parts


def year_row(row: int, years: Sequence[int], limit: int = 6, lang: str = "zh") -> list[InlineKeyboardButton]:
    """Buttons that ask the same question again for another year (newest first)."""
    unit = "" if lang == "en" else "年"
    return [_button(f"📅 {y}{unit}", YearAsk(row, y)) for y in list(years)[:limit]]


def _section_button_label(hit: Hit) -> str:
    label = " ".join(p for p in (hit.section_label, hit.section_title) if p) or hit.report_title
    return "📄 " + shorten(label, BUTTON_LABEL)


def vote_row(row: int, vote: int | None, lang: str = "zh") -> list[InlineKeyboardButton]:
    """👍/👎 buttons, or the recorded vote as a button that does nothing."""
    if vote is None:
        return [_button(t("👍 有帮助", lang), Vote(row, True)), _button(t("👎 没帮助", lang), Vote(row, False))]
    if lang == "en":
        label = EN["voted+"] if vote > 0 else EN["voted-"]
    else:
        label = "已记录：👍 有帮助，谢谢！" if vote > 0 else "已记录：👎 没帮助，我们会改进。"
    return [_button(label, Noop())]


def answer_keyboard(
    row: int,
    page: int,
    top: Hit | None,
    has_more: bool,
    vote: int | None = None,
    other_years: Sequence[int] = (),
    lang: str = "zh",
) -> InlineKeyboardMarkup:
    """全文 / paging, the other years that also have an answer, then 👍/👎."""
    nav: list[InlineKeyboardButton] = []
    if page > 0:
        nav.append(_button(t("◀ 上一页", lang), MorePage(row, page - 1)))
    if top is not None:
        nav.append(_button(t("📄 全文", lang), FullSection(report_key(top.report_id), top.section_id)))
    if has_more:
        nav.append(_button(t("更多结果 ▶", lang), MorePage(row, page + 1)))
    rows = [nav] if nav else []
    if other_years and page == 0:
        years = year_row(row, other_years, lang=lang)
        rows += [years[i : i + 3] for i in range(0, len(years), 3)]
    rows.append(vote_row(row, vote, lang))
    return InlineKeyboardMarkup(rows)


def not_covered_keyboard(hits: Sequence[Hit], limit: int = 3) -> InlineKeyboardMarkup | None:
    seen: set[tuple[str, str]] = set()
    rows = []
    for hit in hits:
        ref = (hit.report_id, hit.section_id)
        if ref in seen:
            continue
        seen.add(ref)
        action = FullSection(report_key(hit.report_id), hit.section_id)
        rows.append([_button(_section_button_label(hit), action)])
        if len(rows) == limit:
            break
    return InlineKeyboardMarkup(rows) if rows else None


def shown_lang(markup: InlineKeyboardMarkup | None) -> str:
    """The language an answer's buttons were shown in (a vote answers in it)."""
    labels = {b.text for r in (markup.inline_keyboard if markup else ()) for b in r}
    return "en" if EN["👍 有帮助"] in labels else "zh"


def with_vote_recorded(markup: InlineKeyboardMarkup | None, row: int, vote: int) -> InlineKeyboardMarkup:
    """The message's keyboard with its 👍/👎 row replaced by the recorded vote."""
    rows = [] if markup is None else [list(r) for r in markup.inline_keyboard]
    kept = [r for r in rows if not any(isinstance(decode_callback(b.callback_data), Vote) for b in r)]
    kept.append(vote_row(row, vote, shown_lang(markup)))
    return InlineKeyboardMarkup(kept)


# --------------------------------------------------------------------------- long texts


def _cost(text: str) -> int:
    """UTF-16 units the text takes once escaped for HTML."""
    return utf16_len(escape(text))


def _split_sentences(text: str, limit: int) -> list[str]:
    """Chunks whose escaped form is at most `limit` units, cut after 。！？； or a newline where
    possible, inside a sentence only when one sentence alone is too long."""
    pieces = [p for p in re.findall(r"[^。！？；!?;\n]*(?:[。！？；!?;\n]+|$)", text) if p]
    chunks: list[str] = []
    cur, cur_cost = "", 0
    for piece in pieces:
        cost = _cost(piece)
        if cur and cur_cost + cost > limit:
            chunks.append(cur)
            cur, cur_cost = "", 0
        if cost > limit:  # one sentence longer than a part: cut by characters
            for ch in piece:
                ch_cost = _cost(ch)
                if cur_cost + ch_cost > limit:
                    chunks.append(cur)
                    cur, cur_cost = "", 0
                cur += ch
                cur_cost += ch_cost
            continue
        cur += piece
        cur_cost += cost
    if cur:
        chunks.append(cur)
    return [c for c in (c.strip() for c in chunks) if c]


def split_parts(header_html: str, blocks: Iterable[tuple[str, bool]], limit: int = PART_LIMIT) -> list[str]:
    """Pack text blocks into numbered message parts of at most `limit` UTF-16 units of HTML.

    blocks: (plain text, bold) in reading order. Each block is escaped (and bolded) on its own
    and split at sentence boundaries if it alone is too long, so no tag spans two parts.
    Every part starts with header_html and, when there are several, "（i/n）".
    """
    room = limit - utf16_len(header_html) - len("（999/999）\n\n")
    if room < 200:
        raise ValueError("header too long for a message part")
    rendered: list[str] = []
    for text, bold in blocks:
        for chunk in _split_sentences(text.strip(), room - len("<b></b>")):
            rendered.append(f"<b>{escape(chunk)}</b>" if bold else escape(chunk))
    bodies: list[str] = []
    cur = ""
    for piece in rendered:
        candidate = f"{cur}\n\n{piece}" if cur else piece
        if cur and utf16_len(candidate) > room:
            bodies.append(cur)
            candidate = piece
        cur = candidate
    if cur or not bodies:
        bodies.append(cur)
    total = len(bodies)
    parts = []
    for i, body in enumerate(bodies, start=1):
        counter = f"（{i}/{total}）" if total > 1 else ""
        parts.append(f"{header_html}{counter}\n\n{body}".rstrip())
    return parts


def _own_marker(section: Section, parent: Section | None) -> str:
    if parent is not None and section.label.startswith(parent.label):
        return section.label[len(parent.label) :]
    return section.label


def section_blocks(section: Section) -> list[tuple[str, bool]]:
    """A section's text as blocks: sub-headings in bold, then paragraphs, in document order."""
    blocks: list[tuple[str, bool]] = []

    def visit(sec: Section, parent: Section | None) -> None:
        if parent is not None:
            heading = " ".join(p for p in (_own_marker(sec, parent), sec.title) if p)
            if heading:
                blocks.append((heading, True))
        for para in sec.paragraphs:
            blocks.append((para.text, False))
        for child in sec.children:
            visit(child, sec)

    visit(section, None)
    return blocks


def section_header(meta: ReportMeta, section: Section) -> str:
    return f"📄 <b>{escape(citation(meta.title, section.label, section.title, meta.year))}</b>"


def render_section_parts(meta: ReportMeta, section: Section, limit: int = PART_LIMIT) -> list[str]:
    """The whole section (sub-sections included) as numbered message parts."""
    blocks = section_blocks(section)
    if not blocks:
        blocks = [("（本节没有正文）", False)]
    return split_parts(section_header(meta, section), blocks, limit)


# --------------------------------------------------------------------------- browsing


def _section_label(section: Section) -> str:
    return " ".join(p for p in (section.label, section.title) if p) or "（前言）"


def browse_view(
    meta: ReportMeta, sections: Sequence[Section], node: Section | None, multi_report: bool
) -> tuple[str, InlineKeyboardMarkup]:
    """A table-of-contents level: the report's chapters (node None) or a section's children.

    Every entry is a Browse button; a section without children opens as text in place."""
    key = report_key(meta.report_id)
    rows: list[list[InlineKeyboardButton]] = []
    if node is None:
        text = f"📚 <b>{escape(meta.title)}</b>\n请选择章节："
        children = sections
    else:
        text = f"📚 <b>{escape(meta.title)}</b>\n{escape(_section_label(node))}\n请选择小节："
        children = node.children
        if node.paragraphs:
            rows.append([_button("📄 本节全文", FullSection(key, node.section_id))])
    for child in children:
        label = "前言" if child.section_id == "0" else shorten(_section_label(child), BUTTON_LABEL)
        rows.append([_button(label, Browse(key, child.section_id))])
    if node is not None:
        parent_id = node.section_id.rpartition(".")[0]
        rows.append([_button("⬅ 返回上一级", Browse(key, parent_id))])
    elif multi_report:
        rows.append([_button("⬅ 返回报告列表", ReportsPage(0))])
    return text, InlineKeyboardMarkup(rows)


def reports_view(metas: Sequence[ReportMeta], page: int) -> tuple[str, InlineKeyboardMarkup]:
    """One page of the loaded reports, each a button into its table of contents."""
    pages = max(1, -(-len(metas) // REPORTS_PER_PAGE))
    page = min(max(page, 0), pages - 1)
    chunk = metas[page * REPORTS_PER_PAGE : (page + 1) * REPORTS_PER_PAGE]
    rows = [[_button(shorten(m.title, BUTTON_LABEL), Browse(report_key(m.report_id), ""))] for m in chunk]
    nav = []
    if page > 0:
        nav.append(_button("◀ 上一页", ReportsPage(page - 1)))
    if page + 1 < pages:
        nav.append(_button("下一页 ▶", ReportsPage(page + 1)))
    if nav:
        rows.append(nav)
    text = f"📚 已收录 {len(metas)} 份报告（第 {page + 1}/{pages} 页），请选择："
    return text, InlineKeyboardMarkup(rows)


# --------------------------------------------------------------------------- fixed texts


def start_text(lang: str = "zh") -> str:
    """The /start greeting in the chat's language (lang "en" for English)."""
    if lang == "en":
        return (
            "Hello! I answer questions from Chinese government reports.\n"
            "Send a question in English or Chinese: I find the passages that answer it and cite the report "
            "and section each comes from (the passages are quoted in Chinese, as published).\n\n"
            "Try one of the questions below, browse the reports with /sections, or see /help."
        )
    return (
        "您好！我是政府报告问答助手。\n"
        "直接发送您的问题，我会从已收录的政府报告中找出相关段落，并注明出自哪份报告的哪一节。\n\n"
        "可以试试下面的问题，或用 /sections 浏览报告目录、/help 查看用法。"
    )


def start_keyboard(examples: Sequence[str] = EXAMPLE_QUESTIONS) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[_button(shorten(q, 40), Example(i))] for i, q in enumerate(examples)])


def help_text(max_question_chars: int, username: str | None = None, lang: str = "zh") -> str:
    """/help in the chat's language (lang "en" for English)."""
    if lang == "en":
        handle = f"@{escape(username)}" if username else "@botname"
        return (
            "<b>How to use</b>\n"
            "• Private chat: just send a question, e.g. “How many disputes did Hengyang mediate in 2019?”\n"
            f"• Groups: {handle} plus the question, reply to my message, or /ask question\n"
            f"• Any chat: type {handle} question to send an answer into the conversation\n\n"
            "Every answer cites its source (report and section); the answering sentence is in bold.\n"
            "Buttons: <b>More results</b> pages on, <b>Full section</b> shows the whole section, 👍/👎 tell us "
            "whether the answer helped. Follow-up questions build on the previous one; /reset forgets them.\n\n"
            "/sections browse the reports\n/about the reports loaded\n/report limit this chat to one region "
            "or report\n/lang en | zh | auto reply language\n/help this help\n\n"
            f"Please keep questions under {max_question_chars} characters."
        )
    handle = f"@{escape(username)}" if username else "@机器人用户名"
    return (
        "<b>使用方法</b>\n"
        "• 私聊：直接发送问题，例如“2019年衡阳调解了多少矛盾纠纷？”\n"
        f"• 群聊：{handle} 加上问题，回复我的消息，或发送 /ask 问题\n"
        f"• 任意聊天：输入 {handle} 问题，可把答案直接发到对话中\n\n"
        "每个答案都注明出处（报告名称和章节），答案句加粗显示。\n"
        "按钮：<b>更多结果</b> 翻页，<b>全文</b> 查看整节原文，👍/👎 告诉我们答案是否有帮助。\n\n"
        "/sections 浏览报告目录\n/about 已收录的报告\n/help 本帮助\n\n"
        f"问题请控制在 {max_question_chars} 字以内。"
    )


def about_parts(metas: Sequence[ReportMeta]) -> list[str]:
    """Which reports are loaded, with dates and sources (split if the list is long)."""
    blocks = []
    for n, meta in enumerate(metas, start=1):
        lines = [f"{n}. 《{meta.title}》"]
        if meta.issuer:
            lines.append(f"发布机关：{meta.issuer}")
        dates = [f"签发 {meta.signed}"] if meta.signed else []
        dates += [f"公开 {meta.published}"] if meta.published else []
        dates = dates or ([f"{meta.year} 年度"] if meta.year else [])
        if dates:
            lines.append("日期：" + "，".join(dates))
        if meta.source_url:
            lines.append(f"来源：{meta.source_url}")
        blocks.append(("\n".join(lines), False))
    header = f"ℹ️ <b>已收录 {len(metas)} 份报告</b>"
    return split_parts(header, blocks or [("（暂无）", False)])


def not_text_reply(examples: Sequence[str] = EXAMPLE_QUESTIONS) -> str:
    return escape(NON_TEXT.format(example=examples[0]))


# --------------------------------------------------------------------------- inline mode


def inline_articles(answer: Answer, query_key: str, limit: int = INLINE_RESULTS) -> list[InlineQueryResultArticle]:
    """One article per hit (title = citation); a single "no results" article when nothing fits."""
    if not answer.answered or not answer.hits:
        return [no_results_article(answer.question, query_key)]
    articles = []
    for n, hit in enumerate(answer.hits[:limit], start=1):
        single = Answer(question=answer.question, answered=True, hits=[hit])
        articles.append(
            InlineQueryResultArticle(
                id=f"{query_key}-{n}",
                title=shorten(_hit_citation(hit), 120),
                description=shorten(hit.highlight or hit.text, 120),
                input_message_content=InputTextMessageContent(render_answer(single), parse_mode=ParseMode.HTML),
            )
        )
    return articles


def no_results_article(question: str, query_key: str) -> InlineQueryResultArticle:
    text = f"❓ {escape(shorten(question, QUESTION_ECHO))}\n\n{NOT_COVERED}"
    return InlineQueryResultArticle(
        id=f"{query_key}-none",
        title="没有找到相关内容",
        description=NOT_COVERED,
        input_message_content=InputTextMessageContent(text, parse_mode=ParseMode.HTML),
    )


def hint_article(query_key: str, examples: Sequence[str] = EXAMPLE_QUESTIONS) -> InlineQueryResultArticle:
    text = f"请输入问题，例如：{escape(examples[0])}"
    return InlineQueryResultArticle(
        id=f"{query_key}-hint",
        title="请输入问题",
        description=f"例如：{examples[0]}",
        input_message_content=InputTextMessageContent(text, parse_mode=ParseMode.HTML),
    )
