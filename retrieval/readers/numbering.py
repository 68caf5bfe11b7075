"""Word auto-numbering → the labels a reader sees (一、 （一） 1.), from numbering.xml (pure).

python-docx gives a paragraph's text without its list label, so a report whose headings are
auto-numbered would lose its whole structure. `Numbering` reads the definitions once; `label()`
is called for every body paragraph in order and keeps the counters the way Word does: each level
counts within its list (w:num), a level's counter restarts when a shallower level advances (unless
w:lvlRestart says otherwise), w:lvlOverride/w:startOverride restart a list at a given number, and
a paragraph without its own w:numPr takes the one of its style chain.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_CN_DIGITS = "〇一二三四五六七八九"
_TIANGAN = "甲乙丙丁戊己庚辛壬癸"
_DIZHI = "子丑寅卯辰巳午未申酉戌亥"


@dataclass
class Level:
    fmt: str = "decimal"
    text: str = "%1."
    start: int = 1
    restart: int | None = None  # w:lvlRestart: restart after this (1-based) level; None = any shallower


@dataclass
class _List:
    levels: dict[int, Level]
    counters: dict[int, int] = field(default_factory=dict)


def chinese_number(n: int) -> str:
    """1 → 一, 10 → 十, 12 → 十二, 20 → 二十, 105 → 一百零五 (Word's chineseCounting)."""
    if n <= 0:
        return str(n)
    if n < 10:
        return _CN_DIGITS[n]
    if n < 20:
        return "十" + (_CN_DIGITS[n % 10] if n % 10 else "")
    if n < 100:
        return _CN_DIGITS[n // 10] + "十" + (_CN_DIGITS[n % 10] if n % 10 else "")
    if n < 1000:
        rest = n % 100
        head = _CN_DIGITS[n // 100] + "百"
        if not rest:
            return head
        return head + ("零" + _CN_DIGITS[rest] if rest < 10 else _tens(rest))
    return str(n)


def _tens(n: int) -> str:
    """10 ≤ n < 100 inside a larger number: 一百一十二 keeps its 一."""
    return _CN_DIGITS[n // 10] + "十" + (_CN_DIGITS[n % 10] if n % 10 else "")


def format_number(n: int, fmt: str) -> str:
    """A counter in one of Word's number formats (the ones Chinese documents use, and the basics)."""
    if n < 0:
        return str(n)
    if fmt in ("chineseCounting", "chineseCountingThousand", "chineseLegalSimplified", "taiwaneseCounting",
               "taiwaneseCountingThousand", "ideographDigital"):
        if fmt == "ideographDigital":
            return "".join(_CN_DIGITS[int(d)] for d in str(n))
        return chinese_number(n)
    if fmt == "ideographTraditional":
        return _TIANGAN[(n - 1) % 10]
    if fmt == "ideographZodiac":
        return _DIZHI[(n - 1) % 12]
    if fmt == "decimalEnclosedCircle" or fmt == "decimalEnclosedCircleChinese":
        return chr(0x2460 + n - 1) if 1 <= n <= 20 else str(n)
    if fmt == "decimalFullWidth" or fmt == "decimalFullWidth2":
        return "".join(chr(0xFF10 + int(d)) for d in str(n))
    if fmt == "decimalZero":
        return f"{n:02d}"
    if fmt in ("upperLetter", "lowerLetter"):
        letter = chr(ord("A") + (n - 1) % 26) * ((n - 1) // 26 + 1)
        return letter if fmt == "upperLetter" else letter.lower()
    if fmt in ("upperRoman", "lowerRoman"):
        roman = _roman(n)
        return roman if fmt == "upperRoman" else roman.lower()
    if fmt in ("none", "bullet"):
        return ""
    return str(n)


def _roman(n: int) -> str:
    out = ""
    for value, sym in ((1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"), (50, "L"),
                       (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")):
        while n >= value:
            out += sym
            n -= value
    return out


class Numbering:
    """The numbering definitions of one document and the running counters of its lists."""

    def __init__(self, numbering_xml, styles_xml) -> None:
        self._abstract: dict[str, dict[int, Level]] = {}
        self._nums: dict[str, tuple[str, dict[int, int]]] = {}  # numId → (abstractNumId, start overrides)
        self._lists: dict[str, _List] = {}
        self._style_numpr: dict[str, tuple[str | None, int | None]] = {}
        self._style_parent: dict[str, str] = {}
        if numbering_xml is not None:
            self._read_numbering(numbering_xml)
        if styles_xml is not None:
            self._read_styles(styles_xml)

    def _read_numbering(self, root) -> None:
        for absn in root.iter(f"{W}abstractNum"):
            levels: dict[int, Level] = {}
            for lvl in absn.iter(f"{W}lvl"):
                levels[_int(lvl.get(f"{W}ilvl"), 0)] = _level(lvl)
            self._abstract[absn.get(f"{W}abstractNumId")] = levels
        for num in root.iter(f"{W}num"):
            abstract = num.find(f"{W}abstractNumId")
            if abstract is None:
                continue
            starts: dict[int, int] = {}
            overrides: dict[int, Level] = {}
            for ov in num.iter(f"{W}lvlOverride"):
                ilvl = _int(ov.get(f"{W}ilvl"), 0)
                so = ov.find(f"{W}startOverride")
                if so is not None:
                    starts[ilvl] = _int(so.get(f"{W}val"), 1)
                lvl = ov.find(f"{W}lvl")
                if lvl is not None:
                    overrides[ilvl] = _level(lvl)
            aid = abstract.get(f"{W}val")
            if overrides:
                merged = dict(self._abstract.get(aid, {}))
                merged.update(overrides)
                aid = f"{aid}/{num.get(f'{W}numId')}"
                self._abstract[aid] = merged
            self._nums[num.get(f"{W}numId")] = (aid, starts)

    def _read_styles(self, root) -> None:
        for style in root.iter(f"{W}style"):
            sid = style.get(f"{W}styleId")
            based = style.find(f"{W}basedOn")
            if based is not None:
                self._style_parent[sid] = based.get(f"{W}val")
            ppr = style.find(f"{W}pPr")
            numpr = ppr.find(f"{W}numPr") if ppr is not None else None
            if numpr is not None:
                self._style_numpr[sid] = _numpr(numpr)

    def label(self, paragraph_element, style_id: str | None) -> str:
        """The label Word shows before this paragraph ('' when it is not numbered); advances counters."""
        num_id, ilvl = None, None
        ppr = paragraph_element.find(f"{W}pPr")
        numpr = ppr.find(f"{W}numPr") if ppr is not None else None
        if numpr is not None:
            num_id, ilvl = _numpr(numpr)
        if num_id is None or ilvl is None:
            s_num, s_lvl = self._style_chain_numpr(style_id)
            num_id = num_id if num_id is not None else s_num
            ilvl = ilvl if ilvl is not None else s_lvl
        if num_id is None or num_id == "0" or num_id not in self._nums:
            return ""
        ilvl = ilvl or 0
        aid, starts = self._nums[num_id]
        levels = self._abstract.get(aid, {})
        if ilvl not in levels:
            return ""
        lst = self._lists.get(num_id)
        if lst is None:
            lst = self._lists[num_id] = _List(levels)
            for lvl_no, start in starts.items():
                lst.counters[lvl_no] = start - 1
        level = levels[ilvl]
        lst.counters[ilvl] = lst.counters.get(ilvl, level.start - 1) + 1
        for deeper, dlevel in levels.items():
            if deeper > ilvl and (dlevel.restart is None or dlevel.restart > ilvl):
                lst.counters.pop(deeper, None)
        if level.fmt == "none":
            return re.sub(r"%\d", "", level.text)
        if level.fmt == "bullet":
            return ""
        text = level.text
        for lvl_no in range(9):
            token = f"%{lvl_no + 1}"
            if token in text:
                lv = levels.get(lvl_no, Level())
                count = lst.counters.get(lvl_no, lv.start)
                text = text.replace(token, format_number(count, lv.fmt))
        return text

    def _style_chain_numpr(self, style_id: str | None) -> tuple[str | None, int | None]:
        num_id, ilvl = None, None
        seen = set()
        while style_id and style_id not in seen:
            seen.add(style_id)
            s_num, s_lvl = self._style_numpr.get(style_id, (None, None))
            num_id = num_id if num_id is not None else s_num
            ilvl = ilvl if ilvl is not None else s_lvl
            if num_id is not None and ilvl is not None:
                break
            style_id = self._style_parent.get(style_id)
        if num_id is not None and ilvl is None:
            ilvl = 0
        return num_id, ilvl


def _level(lvl) -> Level:
    def val(tag: str) -> str | None:
        el = lvl.find(f"{W}{tag}")
        return el.get(f"{W}val") if el is not None else None

    start = val("start")
    restart = val("lvlRestart")
    return Level(
        fmt=val("numFmt") or "decimal",
        text=val("lvlText") if val("lvlText") is not None else "",
        start=_int(start, 1),
        restart=_int(restart, None),
    )


def _numpr(numpr) -> tuple[str | None, int | None]:
    num = numpr.find(f"{W}numId")
    lvl = numpr.find(f"{W}ilvl")
    return (
        num.get(f"{W}val") if num is not None else None,
        _int(lvl.get(f"{W}val"), None) if lvl is not None else None,
    )


def _int(value: str | None, default):
    """An integer attribute as Word writes it; `default` for a missing or malformed one."""
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default
