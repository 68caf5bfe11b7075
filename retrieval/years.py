"""The time a question asks about: years it names, relative years, ranges, "across years", plan or fact.

    when = question_time("去年南山的GDP增长了多少？", today=date(2026, 12, 2))
    when.years == (2025,), when.intent == "review", when.timeline is False

Pure functions; `today` always comes from the caller (REPORTQA_TODAY / --today / the clock).

- Explicit years: 2022年, 2022年度, 二〇二二年, a bare 2022 not followed by a unit (2022的GDP);
  several (2017年和2022年); ranges 2019—2021年, 2019年至2021年, 2019到2021年 (expanded).
- Relative years: 今年, 去年, 前年, 大前年, 上一年, 明年 — counted from today's year (the words'
  blocked contexts, 过去年 or 提前年, come from `retrieval.normalize.RELATIVE_YEARS`).
- Across years (a timeline): 历年, 每年, 这几年, 近几年, 近年来, 近五年, 过去三年, 逐年, 有什么变化, 趋势 —
  or two or more years named.
- Intent: a target or plan (目标, 计划, 预期, 安排, 打算, 规划, 力争, 将 …, 下一步) is answered from the part
  that plans the year; anything else asks what was done, from the part that reviews it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from retrieval.normalize import RELATIVE_YEARS
from retrieval.periods import PLAN, REVIEW

MAX_RANGE = 15  # a "range" longer than this is two separate years, not every year between them
_CN_DIGIT = "〇零一二三四五六七八九"
_CN_VALUE = {c: i for i, c in enumerate("〇一二三四五六七八九")} | {"零": 0}
_YEAR_TOKEN = rf"(?:(?:19|20)\d{{2}}|[{_CN_DIGIT}]{{4}})"
_RANGE_SEP = r"\s*(?:—|–|－|-|~|～|至|到)\s*"
_RANGE = re.compile(rf"(?<!\d)({_YEAR_TOKEN})(?:\s*年)?{_RANGE_SEP}({_YEAR_TOKEN})(?=\s*年)")
_EXPLICIT = re.compile(rf"(?<![\d{_CN_DIGIT}])({_YEAR_TOKEN})(?=\s*年)")
_UNIT_AFTER = "万亿元%％个人户家件座所项条名次米吨斤平公千百十多余倍亩台辆套张份度号"
_BARE = re.compile(rf"(?<![\d.])((?:19|20)\d{{2}})(?![\d.年{_UNIT_AFTER}])")
_RELATIVE = re.compile(
    "|".join(
        (f"(?<![{re.escape(blocked)}])" if blocked else "") + re.escape(word)
        for word, _, blocked in RELATIVE_YEARS
    )
)
_RELATIVE_OFFSET = {word: offset for word, offset, _ in RELATIVE_YEARS}
_CN_SMALL = {"两": 2, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}
_LAST_N = re.compile(r"(?:近|最近|过去|前)([两二三四五六七八九十]|\d{1,2})年")
_ACROSS = re.compile(
    r"历年|每年|每一年|各年|逐年|这几年|近几年|近年来|这些年|多年来|历年来|"
    r"有什么变化|有何变化|变化情况|变化趋势|怎么变化|如何变化|趋势|走势|分别是"
)
_PLAN_WORDS = re.compile(
    r"目标|计划|预期|安排|打算|规划|力争|争取|准备|下一步|接下来|今后|未来|即将|将要|将会|要做|"
    r"(?<![即])将(?![近军领士])|(?<![主需重只必想紧])要(?![求点素闻事])"
)


@dataclass(frozen=True)
class QuestionTime:
    years: tuple[int, ...]  # every year the question is about, resolved, ascending
    explicit: tuple[int, ...]  # years written out (2022年, 二〇二二年, ranges expanded)
    relative: tuple[tuple[str, int], ...]  # (word, year) for 今年/去年 … as resolved against today
    intent: str  # PLAN for targets and plans, else REVIEW
    timeline: bool  # the question asks across years
    last_n: int | None = None  # 近五年 → 5
    today: date | None = None

    @property
    def single_year(self) -> int | None:
        return self.years[0] if len(self.years) == 1 and not self.timeline else None


def _year_value(token: str) -> int | None:
    if token.isdigit():
        return int(token)
    if len(token) == 4 and all(c in _CN_VALUE for c in token):
        return int("".join(str(_CN_VALUE[c]) for c in token))
    return None


def explicit_years(text: str) -> tuple[int, ...]:
    """Years written out in the text, ranges expanded (see the module docstring)."""
    found: set[int] = set()
    covered: list[tuple[int, int]] = []
    for m in _RANGE.finditer(text):
        a, b = _year_value(m.group(1)), _year_value(m.group(2))
        if a and b and 0 < b - a <= MAX_RANGE:
            found.update(range(a, b + 1))
            covered.append(m.span())
        elif a and b:
            found.update((a, b))
            covered.append(m.span())
    for m in _EXPLICIT.finditer(text):
        if any(s <= m.start() < e for s, e in covered):
            continue
        y = _year_value(m.group(1))
        if y:
            found.add(y)
    for m in _BARE.finditer(text):
        if any(s <= m.start() < e for s, e in covered):
            continue
        found.add(int(m.group(1)))
    return tuple(sorted(y for y in found if 1900 <= y <= 2100))


def relative_years(text: str, today: date) -> tuple[tuple[str, int], ...]:
    """(word, year) for each relative year word, counted from today's year."""
    out: list[tuple[str, int]] = []
    for m in _RELATIVE.finditer(text):
        pair = (m.group(0), today.year + _RELATIVE_OFFSET[m.group(0)])
        if pair not in out:
            out.append(pair)
    return tuple(out)


def last_n_years(text: str) -> int | None:
    m = _LAST_N.search(text)
    if not m:
        return None
    raw = m.group(1)
    n = int(raw) if raw.isdigit() else _CN_SMALL.get(raw)
    return n if n and 2 <= n <= 30 else None


def question_intent(text: str) -> str:
    """PLAN when the question asks for a target or a plan, else REVIEW (what was done)."""
    return PLAN if _PLAN_WORDS.search(text) else REVIEW


def question_time(text: str, today: date, *, year: int | None = None) -> QuestionTime:
    """Everything about time in a question (folded text); `year` forces one year (`ask --year`)."""
    relative = relative_years(text, today)
    explicit = explicit_years(_RELATIVE.sub(" ", text))
    n = last_n_years(text)
    if year is not None:
        return QuestionTime((year,), (year,), (), question_intent(text), False, None, today)
    years = tuple(sorted(set(explicit) | {y for _, y in relative}))
    timeline = len(years) >= 2 or bool(_ACROSS.search(text)) or n is not None
    return QuestionTime(years, explicit, relative, question_intent(text), timeline, n, today)


def strip_years(text: str) -> str:
    """The text without its year expressions (2019—2021年, 2022年, 二〇二二年, 今年 …).

    Once the passages are restricted to one year, the year's words only favour sentences that repeat
    them (刚刚过去的2019年…) over the one that states the figure.
    """
    text = _RANGE.sub(" ", text)
    text = re.sub(rf"(?<![\d{_CN_DIGIT}]){_YEAR_TOKEN}\s*年度?", " ", text)
    text = _RELATIVE.sub(" ", text)
    return text if text.strip() else text


def replace_relative(text: str, years: dict[str, int]) -> str:
    """今年/去年 … → the absolute years given for them, so both legs search for "2019年"."""
    if not years:
        return text
    return _RELATIVE.sub(lambda m: f"{years[m.group(0)]}年" if m.group(0) in years else m.group(0), text)


def parse_today(value: str | None) -> date | None:
    """YYYY-MM-DD (REPORTQA_TODAY, --today) → date; ValueError with a plain message otherwise."""
    if value is None or not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"not a date (expected YYYY-MM-DD): {value!r}") from None
