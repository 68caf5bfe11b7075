"""Question normalisation: make a citizen's question look like report text before it is searched.

Two entry points:
- `fold_for_match(text)` folds script and width (traditional → simplified, full-width ASCII →
  half-width) and nothing else. It is applied to both sides, questions and report paragraphs, so
  that 「調解」 finds 调解 and ９９．１７％ finds 99.17%. It keeps the length of the text, so offsets
  found in the folded text are offsets in the original.
- `normalize_question(text, report_year=...)` = strip invisible characters, fold, collapse
  whitespace, resolve relative years (今年/去年 …) against the report's year and, unless switched
  off, append official terms for colloquial ones (打官司 → 诉讼) so both the lexical and the dense leg
  see the words the reports use. Expansion appends and never replaces: the citizen's own words
  still count.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from functools import lru_cache

# Colloquial wording → the terms government reports use for the same thing. Data, not code: the lead
# measures on the dev set whether each line helps. Order does not matter; every match appends.
COLLOQUIAL_TO_OFFICIAL: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("打官司", ("诉讼", "行政诉讼")),
    ("官司", ("诉讼", "案件")),
    ("赢了", ("胜诉",)),
    ("打赢", ("胜诉",)),
    ("输了", ("败诉",)),
    ("打输", ("败诉",)),
    ("被告了", ("被诉", "诉讼")),
    ("被人告", ("被诉", "诉讼")),
    ("告政府", ("行政诉讼", "行政复议")),
    ("民告官", ("行政诉讼", "行政机关负责人出庭应诉")),
    ("告官", ("行政诉讼",)),
    ("办证", ("审批", "许可")),
    ("办执照", ("审批", "许可", "营业执照")),
    ("办营业执照", ("审批", "许可", "营业执照")),
    ("开公司", ("企业开办", "审批")),
    ("找律师", ("法律顾问", "律师", "法律援助")),
    ("请律师", ("律师", "法律援助")),
    ("政府的律师", ("法律顾问",)),
    ("吵架", ("矛盾纠纷", "调解")),
    ("闹矛盾", ("矛盾纠纷", "调解")),
    ("闹纠纷", ("矛盾纠纷", "调解")),
    ("扯皮", ("矛盾纠纷",)),
    ("上访", ("信访",)),
    ("投诉", ("信访",)),
    ("举报", ("投诉",)),
    ("乱罚款", ("行政处罚",)),
    ("罚款", ("行政处罚",)),
    ("乱执法", ("行政执法", "执法监督")),
    ("执法不公", ("行政执法", "执法监督")),
    ("红头文件", ("规范性文件",)),
    ("拆迁", ("征收",)),
    ("公务员", ("国家工作人员",)),
    ("当官的", ("领导干部",)),
    ("老百姓", ("群众",)),
    ("跑腿", ("最多跑一次", "政务服务")),
    ("网上办事", ("互联网+政务服务", "政务服务")),
    ("政府公开信息", ("政务公开", "政府信息公开")),
    # Work reports: what citizens call the economy's figures.
    ("GDP", ("生产总值", "地区生产总值")),
    ("gdp", ("生产总值", "地区生产总值")),
    ("经济总量", ("生产总值",)),
    ("经济增长", ("生产总值", "增长")),
    ("经济增速", ("生产总值", "增长")),
)

# Relative year words → offset from the report's year. Each word has the characters before it that
# would make it part of another word (提前年, 文明年, 过去年) excluded. 后年/上年/本年 are left out:
# 今后年度, 马上年底 and 基本年薪 are far more common than the relative year.
RELATIVE_YEARS: tuple[tuple[str, int, str], ...] = (
    ("大前年", -3, ""),
    ("上一年", -1, ""),
    ("前年", -2, "大提此以之目事空从"),
    ("去年", -1, "过失除"),
    ("今年", 0, ""),
    ("明年", 1, "文证说表声透光"),
)
_RELATIVE_YEAR_RE = re.compile(
    "|".join(
        (f"(?<![{re.escape(blocked)}])" if blocked else "") + re.escape(word)
        for word, _, blocked in RELATIVE_YEARS
    )
)
_RELATIVE_YEAR_OFFSET = {word: offset for word, offset, _ in RELATIVE_YEARS}

# Full-width forms U+FF01..U+FF5E map to ASCII by subtracting 0xFEE0. These seven are ordinary
# Chinese punctuation in running text (，：；！？（）) and stay as they are.
_KEEP_FULLWIDTH = set("！（），：；？")
_WIDTH_TABLE: dict[int, str] = {
    code: chr(code - 0xFEE0) for code in range(0xFF01, 0xFF5F) if chr(code) not in _KEEP_FULLWIDTH
}
_WIDTH_TABLE[0x3000] = " "  # ideographic space
for _space in ("\u00a0", "\u2000", "\u2001", "\u2002", "\u2003", "\u2004", "\u2005", "\u2006", "\u2007",
               "\u2008", "\u2009", "\u200a", "\u202f", "\u205f"):
    _WIDTH_TABLE[ord(_space)] = " "

_WHITESPACE_RE = re.compile(r"\s+")
_REPEATED_PUNCT_RE = re.compile(r"([?？!！。，,、])\1+")

_t2s_lock = threading.Lock()
_t2s = None


def _t2s_converter():
    """OpenCC t2s, loaded once on first use (thread-safe): most commands never see traditional text."""
    global _t2s
    if _t2s is None:
        with _t2s_lock:
            if _t2s is None:
                from opencc import OpenCC

                _t2s = OpenCC("t2s")
    return _t2s


@lru_cache(maxsize=1)
def _convertible_chars() -> frozenset[str]:
    """Every character OpenCC's t2s dictionaries can change: text without one is already simplified.

    OpenCC's pure-Python converter costs ~1 ms per sentence; almost every question and all report text
    is simplified already, so this check makes the common case free.
    """
    from pathlib import Path

    import opencc

    chars: set[str] = set()
    folder = Path(opencc.__file__).parent / "dictionary"
    for name in ("TSCharacters.txt", "TSPhrases.txt"):
        for line in (folder / name).read_text(encoding="utf-8").splitlines():
            key, _, values = line.partition("\t")
            for value in values.split():
                if len(value) == len(key):
                    chars.update(k for k, v in zip(key, value, strict=True) if k != v)
                else:
                    chars.update(key)
    return frozenset(chars)


def to_simplified(text: str) -> str:
    """Traditional → simplified Chinese, one character out for each character in.

    OpenCC converts by phrase; in the rare case a phrase changes length, the text is converted
    character by character instead so that offsets into the result stay valid for the original.
    """
    if not text or text.isascii() or _convertible_chars().isdisjoint(text):
        return text
    converted = _t2s_converter().convert(text)
    if len(converted) == len(text):
        return converted
    convert = _t2s_converter().convert
    return "".join(ch if len(out := convert(ch)) != 1 else out for ch in text)


def fold_width(text: str) -> str:
    """Full-width ASCII letters, digits and symbols → half-width; odd spaces → plain space.

    Chinese punctuation (，。、《》“” …) is kept; length is unchanged.
    """
    return text.translate(_WIDTH_TABLE)


def fold_for_match(text: str) -> str:
    """Fold script and width so text can be matched against text; same length as the input.

    Used on both questions and report paragraphs. No synonym expansion and no case change.
    """
    return to_simplified(fold_width(text))


def strip_invisible(text: str) -> str:
    """Drop control, zero-width and bidi marks (U+200B, U+200E, U+202E, U+FEFF …); tabs/newlines → space.

    Pasted questions carry these from web pages and chat apps; they split words for the tokenizer
    and can reorder what the user sees.
    """
    out = []
    for ch in text:
        category = unicodedata.category(ch)
        if category in ("Cc", "Cf", "Cs", "Zl", "Zp"):
            if ch.isspace():
                out.append(" ")
            continue
        out.append(ch)
    return "".join(out)


def collapse_whitespace(text: str) -> str:
    """One space between words, none at the ends, repeated ？？/！！ reduced to one."""
    text = _REPEATED_PUNCT_RE.sub(r"\1", text)
    return _WHITESPACE_RE.sub(" ", text).strip()


def resolve_relative_years(text: str, report_year: int | None) -> str:
    """今年/去年/前年/明年 … → absolute years counted from `report_year`; unchanged when it is None.

    Reports say "2019年", citizens say "今年"; for a 2019 report 去年 becomes 2018年.
    """
    if report_year is None:
        return text
    return _RELATIVE_YEAR_RE.sub(
        lambda match: f"{report_year + _RELATIVE_YEAR_OFFSET[match.group(0)]}年", text
    )


def expand_colloquial(
    text: str, table: tuple[tuple[str, tuple[str, ...]], ...] = COLLOQUIAL_TO_OFFICIAL
) -> str:
    """Append the official terms for each colloquial term found; the original words stay.

    Terms already present in the text are not appended again.
    """
    additions: list[str] = []
    for colloquial, officials in table:
        if colloquial in text:
            for official in officials:
                if official not in text and official not in additions:
                    additions.append(official)
    if not additions:
        return text
    return f"{text} {' '.join(additions)}"


def normalize_question(
    text: str, *, report_year: int | None = None, expand_synonyms: bool = True
) -> str:
    """The question as it should be searched (both legs): folded, cleaned, years resolved, expanded.

    `expand_synonyms=False` switches the colloquial → official table off so its effect can be measured.
    """
    text = collapse_whitespace(fold_for_match(strip_invisible(text)))
    if not text:
        return ""
    text = resolve_relative_years(text, report_year)
    if expand_synonyms:
        text = expand_colloquial(text)
    return text
