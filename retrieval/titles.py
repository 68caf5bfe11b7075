"""What a report's title says about it: year, region, kind and a delivery date. Pure functions.

Staff add reports by dropping files; the title (from the text's title line, or the file name) is
all that tells 2023年南山区政府工作报告 from 深圳市政府工作报告 of another year:

    describe_title("2014年政府工作报告（在深圳市罗湖区第六届人民代表大会第三次会议上）")
    → TitleFacts(year=2014, region="罗湖区", kind="政府工作报告", date=None)

- region: the most specific place the title names (district before city before province), or 国务院;
- kind: 政府工作报告 (a 新区管委会工作报告 is the same genre), 法治政府建设情况报告, 条例, 规定 …;
- year: the year the title names (2019年度 → 2019); a report "关于2021年度…的报告" is about 2021;
- date: a full date in the title (南山区政府工作报告（2021年10月17日）).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

WORK_REPORT = "政府工作报告"
RULE_OF_LAW_REPORT = "法治政府建设情况报告"
# Kinds whose parts are about years (reviewed or planned); a regulation is not about a year.
DATED_KINDS = frozenset({WORK_REPORT, RULE_OF_LAW_REPORT})

_FILE_YEAR_SUFFIX = re.compile(r"_((?:19|20)\d{2})年?$")
_CN_YEAR_DIGITS = "〇零一二三四五六七八九"
_YEAR = re.compile(rf"((?:19|20)\d{{2}}|[{_CN_YEAR_DIGITS}]{{4}})年")
_DATE = re.compile(r"((?:19|20)\d{2})年(\d{1,2})月(\d{1,2})日")
_PLACE = re.compile(r"([\u4e00-\u9fff]{2,6}?)(特别行政区|自治区|新区|省|市|区|县)")
# Characters that cannot be part of a place name: a candidate stem is cut after the last of them.
_NOT_IN_PLACE = set("年月日在于的度至及和与关届次会议上报告工作政府人民代表作印发厅")
_LEVEL = {"特别行政区": 2, "自治区": 1, "省": 1, "市": 2, "新区": 3, "区": 3, "县": 3}
_GENERIC = ("全市", "全区", "全省", "本市", "本区", "我市", "我区", "市区", "城区", "辖区", "新区")
_KINDS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"法治政府建设"), RULE_OF_LAW_REPORT),
    (re.compile(r"政府工作报告|管委会工作报告|管理委员会工作报告|^.{0,12}工作报告"), WORK_REPORT),
    (re.compile(r"条例"), "条例"),
    (re.compile(r"规定"), "规定"),
    (re.compile(r"办法"), "办法"),
    (re.compile(r"决定"), "决定"),
    (re.compile(r"意见"), "意见"),
    (re.compile(r"纲要|规划"), "规划"),
    (re.compile(r"公报"), "公报"),
)


@dataclass(frozen=True)
class TitleFacts:
    year: int | None
    region: str | None
    kind: str | None
    date: str | None  # ISO, when the title carries a full date


def cn_year(text: str) -> int | None:
    """二〇二二 → 2022 (digit by digit); arabic digits pass through; None for anything else."""
    if text.isdigit():
        return int(text)
    digits = {c: i for i, c in enumerate("〇一二三四五六七八九")}
    digits["零"] = 0
    if len(text) == 4 and all(c in digits for c in text):
        return int("".join(str(digits[c]) for c in text))
    return None


def title_from_filename(stem: str) -> str:
    """The file name without its `_YEAR` suffix (how the shared corpora name their files)."""
    return _FILE_YEAR_SUFFIX.sub("", stem) or stem


def filename_year(stem: str) -> int | None:
    m = _FILE_YEAR_SUFFIX.search(stem)
    return int(m.group(1)) if m else None


def title_year(title: str) -> int | None:
    """The first year the title names (2019年, 2019年度, 二〇二二年), else a bare 4-digit year (（2014）)."""
    for m in _YEAR.finditer(title):
        year = cn_year(m.group(1))
        if year and 1900 <= year <= 2100:
            return year
    bare = re.search(r"(?<!\d)((?:19|20)\d{2})(?!\d)", title)
    return int(bare.group(1)) if bare else None


def title_date(title: str) -> str | None:
    m = _DATE.search(title)
    if not m:
        return None
    y, mo, d = (int(g) for g in m.groups())
    if 1 <= mo <= 12 and 1 <= d <= 31:
        return f"{y:04d}-{mo:02d}-{d:02d}"
    return None


def places_in(text: str) -> list[tuple[str, int]]:
    """Place names with an administrative suffix in `text`, with their level (1 province … 3 district)."""
    found: list[tuple[str, int]] = []
    for run in re.findall(r"[\u4e00-\u9fff]+", text):
        for m in _PLACE.finditer(run):
            stem, suffix = m.group(1), m.group(2)
            cut = max((i for i, ch in enumerate(stem) if ch in _NOT_IN_PLACE), default=-1)
            stem = stem[cut + 1 :]
            name = stem + suffix
            if len(stem) < 2 or name in _GENERIC or any(g in name for g in _GENERIC[:10]):
                continue
            found.append((name, _LEVEL[suffix]))
    return found


def title_region(title: str) -> str | None:
    """The most specific place the title names (深圳市罗湖区 → 罗湖区), else 国务院 if named, else None."""
    places = places_in(title)
    if places:
        best = max(places, key=lambda p: p[1])  # first of the most specific level
        return next(name for name, level in places if level == best[1])
    if "国务院" in title:
        return "国务院"
    return None


def title_kind(title: str) -> str | None:
    for pattern, kind in _KINDS:
        if pattern.search(title):
            return kind
    return None


def describe_title(title: str, file_stem: str | None = None) -> TitleFacts:
    """Year, region, kind and date from a title; the file name's `_YEAR` suffix is the year's fallback."""
    year = title_year(title)
    if year is None and file_stem:
        year = filename_year(file_stem)
    return TitleFacts(year=year, region=title_region(title), kind=title_kind(title), date=title_date(title))


def region_key(region: str | None) -> str | None:
    """The name a region keeps across renamings: 光明新区 and 光明区 are one series (光明)."""
    if not region:
        return None
    for suffix in ("特别行政区", "自治区", "新区", "省", "市", "区", "县"):
        if region.endswith(suffix) and len(region) > len(suffix) + 1:
            return region[: -len(suffix)]
    return region
