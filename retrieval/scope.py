"""Which reports a question is about: places and years it names, matched against report metadata.

A question that names 衡阳 should be answered from the Hengyang report even when 146 other reports
are indexed. Which year inside that place's series is `retrieval.years` and `retrieval.periods`'
job. Pure functions.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from retrieval.document import ReportMeta
from retrieval.titles import region_key

_YEAR = re.compile(r"(?<!\d)((?:19|20)\d{2})(?=\s*年|\s*年度|(?!\d))")
_PLACE = re.compile(r"([\u4e00-\u9fff]{2,6}?)(省|自治区|市|新区|区|县)")
NATIONAL = "国务院"  # the region of national reports (国务院政府工作报告)
_NATIONAL = re.compile(r"全国|中国|我国|国家的|国内生产总值|国务院")
_NOT_PLACE = re.compile(r"人民|政府|代表|会议|委员")
_GENERIC_PLACE_WORDS = ("我市", "全市", "本市", "市区", "城区", "全区", "我区", "县市", "辖区", "全省", "我省")


@dataclass(frozen=True)
class Scope:
    years: tuple[int, ...]  # years the question names
    places: tuple[str, ...]  # place names the question names that some report is about
    report_ids: tuple[str, ...] | None  # reports the question is about; None = no preference


@lru_cache(maxsize=4096)
def report_places(meta: ReportMeta) -> frozenset[str]:
    """Place names a report is about, with and without their 市/区/县 suffix (衡阳市, 衡阳)."""
    names: set[str] = set()
    for text in (meta.region or "", meta.title, meta.issuer or ""):
        for m in _PLACE.finditer(text):
            stem, suffix = m.group(1), m.group(2)
            # "深圳市龙华区…" yields 深圳市 and 龙华区; trim leading non-place words like 2019年
            stem = re.sub(r"^.*?年", "", stem) or stem
            # "…区长王立德在深圳市宝安区…会议上": the place is what follows 在, and 人民政府区 (the
            # government, then 区长) is no place
            stem = re.split(r"在", stem)[-1]
            if len(stem) < 2 or _NOT_PLACE.search(stem) or any(w in stem + suffix for w in _GENERIC_PLACE_WORDS):
                continue
            names.add(stem + suffix)
            names.add(stem)
    return frozenset(names)


def question_years(question: str) -> tuple[int, ...]:
    return tuple(sorted({int(m.group(1)) for m in _YEAR.finditer(question)}))


GAZETTEER_FILE = Path(__file__).with_name("places_zh.txt")


def places_from_jieba() -> frozenset[str]:
    """Chinese place names: jieba's dictionary words tagged `ns` (place) with frequency ≥ 50 (~2,500).

    Reading jieba's 350k-line dictionary takes 0.1–0.2 s, so the list is shipped as GAZETTEER_FILE
    (`scripts/make_gazetteer.py` writes it; a test checks it still matches jieba's dictionary).
    """
    import jieba

    names: set[str] = set()
    with open(Path(jieba.__file__).with_name("dict.txt"), encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "ns" and len(parts[0]) >= 2 and int(parts[1]) >= 50:
                names.add(parts[0])
    return frozenset(names)


@lru_cache(maxsize=1)
def gazetteer() -> frozenset[str]:
    """The shipped place names (see `places_from_jieba`); used to notice a question about a place
    none of the reports mentions (长沙 asked of the Hengyang report)."""
    return frozenset(GAZETTEER_FILE.read_text(encoding="utf-8").split())


def question_places(question: str) -> tuple[str, ...]:
    """Place names from the gazetteer that occur in the question (longest first, no overlaps)."""
    found: list[str] = []
    for n in range(min(6, len(question)), 1, -1):
        for i in range(len(question) - n + 1):
            word = question[i : i + n]
            if word in gazetteer() and not any(word in f for f in found):
                found.append(word)
    return tuple(found)


_RANGE_END = re.escape("—–-~～至到")


def mentions_year(text: str, year: int) -> bool:
    """The text speaks of that year: "2020年", not the end of a range like "2015—2020年"."""
    return re.search(rf"(?<![\d{_RANGE_END}]){year}(?=\s*年)", text) is not None


def _level(region: str | None) -> int:
    if not region:
        return 0
    for suffix, level in (("新区", 3), ("区", 3), ("县", 3), ("市", 2), ("省", 1), ("自治区", 1)):
        if region.endswith(suffix):
            return level
    return 1  # 国务院


def detect_scope(question: str, metas: Sequence[ReportMeta]) -> Scope:
    """The reports of the places the question names (years are `retrieval.years`' job).

    A report *about* the named place (its region: 深圳市政府工作报告 for 深圳) wins over one whose
    title merely mentions it (深圳市宝安区…); when the question names places at several levels
    (深圳市宝安区), the most specific one decides.
    """
    years = question_years(question)
    places_by_report = {m.report_id: report_places(m) for m in metas}
    named = sorted(
        {p for ps in places_by_report.values() for p in ps if p in question}, key=len, reverse=True
    )
    if _NATIONAL.search(question) and any(m.region == NATIONAL for m in metas):
        named.append(NATIONAL)
    candidates = list(metas)
    if named:
        keys = {region_key(p) or p for p in named}
        by_region = [m for m in metas if m.region and region_key(m.region) in keys]
        if by_region:
            top = max(_level(m.region) for m in by_region)
            candidates = [m for m in by_region if _level(m.region) == top]
        else:
            by_place = [m for m in metas if places_by_report[m.report_id] & set(named)]
            candidates = by_place or candidates
    narrowed = len(candidates) < len(metas)
    return Scope(
        years=years,
        places=tuple(named),
        report_ids=tuple(m.report_id for m in candidates) if narrowed else None,
    )
