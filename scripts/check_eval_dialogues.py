"""Check the dialogue eval set (`corpus/eval/dialogues-dev.jsonl` by default) against the report texts.

    python scripts/check_eval_dialogues.py [DIALOGUES.jsonl] [--corpus DIR] [--library DIR]

Each line is one turn of a chat dialogue. For every line it checks that:

- the line is a JSON object with the keys `conversation, turn, question, today, type, standalone, report,
  gold_sections, answer_key, split` in that order; conversations are `dlg-NN`, numbered 1, 2, 3 … in file
  order, each contiguous, with turns 1, 2, 3 … in order; `today` is an ISO date, the same on every turn of a
  dialogue, and so is `split`; consecutive dialogues alternate tune/heldout;
- `type` is `fresh`, `year`, `place`, `measure` or `more`; turn 1 is `fresh`; a `fresh` standalone equals its
  question and names a place (it must stand on its own); a `more` standalone equals the previous turn's; any
  other follow-up has a standalone different from its question and from the previous standalone;
- years fit: a `year` follow-up changes the year of the previous standalone, and a year it writes out
  (2017年, 二〇二一年) or implies (今年/去年/前年/明年, counted from `today`) is the year of its standalone; a
  `place` or `measure` follow-up keeps the previous standalone's year;
- `report` names the seed (via `corpus/reports.toml`) or a file stem of the library; only a `more` turn may
  have `report` and `answer_key` null (then `gold_sections` is `[]`); seed turns have gold sections that exist,
  library turns have `[]`;
- each `answer_key` lies inside one sentence of its report as `retrieval.parse` splits them (several hits are
  allowed only when they are the same sentence repeated), and for seed turns inside the body text of every
  gold section;
- the report came out by `today` (manifest `published`, else the delivery year), and it fits the
  standalone's year (not checked for `more`): a target (目标/计划/预期/打算) for year Y comes
  from the work report delivered in Y, an actual figure from the one delivered in Y+1 (a 法治政府 report, and
  the seed, covers the year in its name);
- the set reaches the minimum counts (dialogues, turns, each follow-up type, fresh questions after context,
  seed dialogues, library series, 2-/3-/4-turn dialogues, relative and Chinese-numeral years) and its halves
  are balanced.

Files whose name contains 盐田, 龙岗, yantian, longgang or acceptance are held out for acceptance testing: the
checker refuses to open them (and fails a line that names one). It prints the counts per type and split, and
exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tomllib
from collections import Counter
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from retrieval.document import Report, ReportMeta  # noqa: E402
from retrieval.parse import parse_report  # noqa: E402
from retrieval.sources import read_report_text  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_EVAL = REPO / "corpus" / "eval" / "dialogues-dev.jsonl"
DEFAULT_CORPUS = REPO / "corpus"
DEFAULT_LIBRARY = REPO.parent / "shared" / "corpora" / "gov-work-reports"
SEED = "hengyang-2019-fazhi"

KEYS = [
    "conversation",
    "turn",
    "question",
    "today",
    "type",
    "standalone",
    "report",
    "gold_sections",
    "answer_key",
    "split",
]
TYPES = ("fresh", "year", "place", "measure", "more")
SPLITS = ("tune", "heldout")
HELD_OUT = ("盐田", "龙岗", "yantian", "longgang", "acceptance")
MIN_COUNTS = {"year": 14, "place": 12, "measure": 12, "more": 6, "fresh-after-context": 10}
MIN_DIALOGUES, MIN_TURNS, MIN_SEED_DIALOGUES, MIN_SERIES, MIN_MIXED = 24, 75, 5, 6, 5
# file-name suffix that is not the delivery year: this report reviews 2013 and plans 2014
DELIVERY_OVERRIDES = {"大鹏新区管委会2014年工作报告_2015": 2014}
# series of the library, most specific first (宝安 reports start with 深圳市)
SERIES = [
    ("南山区", "南山区"),
    ("福田区", "福田区"),
    ("宝安区", "宝安区"),
    ("罗湖区", "罗湖区"),
    ("光明", "光明区"),
    ("坪山", "坪山区"),
    ("龙华", "龙华区"),
    ("大鹏", "大鹏新区"),
    ("广东省", "广东省"),
    ("国务院", "国务院"),
    ("深圳市政府", "深圳市"),
]
PLACES = (
    "衡阳",
    "深圳",
    "广东",
    "全国",
    "国家",
    "中国",
    "国务院",
    "南山",
    "福田",
    "宝安",
    "罗湖",
    "光明",
    "坪山",
    "龙华",
    "大鹏",
)
TARGET_WORDS = ("目标", "计划", "预期", "打算")
RELATIVE = {"今年": 0, "去年": -1, "前年": -2, "明年": 1}
CN_DIGITS = {
    "〇": "0",
    "零": "0",
    "一": "1",
    "二": "2",
    "三": "3",
    "四": "4",
    "五": "5",
    "六": "6",
    "七": "7",
    "八": "8",
    "九": "9",
}
YEAR_RE = re.compile(r"((?:19|20)\d\d)年")
CN_YEAR_RE = re.compile(r"([〇零一二三四五六七八九]{4})年")


def held_out(name: str) -> bool:
    low = name.lower()
    return any(h in low for h in HELD_OUT)


def written_years(text: str) -> set[int]:
    """Years written out in `text`: 2017年 and 二〇二一年."""
    years = {int(y) for y in YEAR_RE.findall(text)}
    years |= {int("".join(CN_DIGITS[c] for c in y)) for y in CN_YEAR_RE.findall(text)}
    return years


def relative_years(text: str, today: date) -> set[int]:
    return {today.year + k for w, k in RELATIVE.items() if w in text}


def all_years(text: str, today: date) -> set[int]:
    return written_years(text) | relative_years(text, today)


def series_of(report_id: str) -> str:
    if report_id == SEED:
        return "衡阳市"
    for needle, name in SERIES:
        if needle in report_id:
            return name
    return "?"


def delivery_year(report_id: str) -> int | None:
    if report_id in DELIVERY_OVERRIDES:
        return DELIVERY_OVERRIDES[report_id]
    m = re.search(r"_(\d{4})年?$", report_id)
    return int(m.group(1)) if m else None


def fits_year(report_id: str, year: int, target: bool) -> bool:
    """Whether the report states year `year`'s actual figure (or target)."""
    if report_id == SEED:
        return year == 2019 and not target
    if "法治" in report_id:  # a 法治政府 report covers the year in its name
        named = written_years(report_id)
        return not target and year in named
    dy = delivery_year(report_id)
    return dy == (year if target else year + 1)


class Reports:
    """Parsed reports by id, loaded once each; refuses held-out files."""

    def __init__(self, corpus: Path, library: Path) -> None:
        self.library = library
        self.files: dict[str, Path] = {}
        self._published: dict[str, int] = {}
        manifest = corpus / "reports.toml"
        entries = tomllib.loads(manifest.read_text(encoding="utf-8")).get("report", []) if manifest.is_file() else []
        for entry in entries:
            if held_out(entry["file"]) or held_out(entry["id"]):
                continue
            self.files[entry["id"]] = corpus / entry["file"]
            if entry.get("published"):
                self._published[entry["id"]] = int(str(entry["published"])[:4])
        self._parsed: dict[str, Report] = {}

    def published_year(self, report_id: str) -> int | None:
        """Year the report came out: the manifest's `published`, else the library file's delivery year."""
        return self._published.get(report_id) or delivery_year(report_id)

    def path(self, report_id: str) -> Path:
        return self.files.get(report_id, self.library / f"{report_id}.txt")

    def exists(self, report_id: str) -> bool:
        return not held_out(report_id) and not held_out(self.path(report_id).name) and self.path(report_id).is_file()

    def parsed(self, report_id: str) -> Report:
        path = self.path(report_id)
        if held_out(report_id) or held_out(str(path)):
            raise ValueError(f"{report_id}: held-out report, not opened")
        if report_id not in self._parsed:
            self._parsed[report_id] = parse_report(read_report_text(path), ReportMeta(report_id, report_id, path.name))
        return self._parsed[report_id]

    def sentences(self, report_id: str) -> list[str]:
        return [s.text for p in self.parsed(report_id).paragraphs() for s in p.sentences]


def check_key(reports: Reports, report_id: str, key: str) -> str | None:
    """None when `key` lies inside one sentence of the report, else what is wrong."""
    hits = {s for s in reports.sentences(report_id) if key in s}
    if not hits:
        text = reports.parsed(report_id).text
        where = "in the text but across sentences or in a heading" if key in text else "not in the text"
        return f"{key!r}: {where} of {report_id}"
    if len(hits) > 1:
        return f"{key!r}: in {len(hits)} different sentences of {report_id}"
    return None


def check_gold(reports: Reports, report_id: str, gold: list[str], key: str) -> list[str]:
    errs = []
    report = reports.parsed(report_id)
    for sid in gold:
        sec = report.section(sid)
        if sec is None:
            errs.append(f"gold section {sid!r} not in {report_id}")
            continue
        body = "\n".join(p.text for p in sec.all_paragraphs())
        if key not in body:
            errs.append(f"{key!r} not in the body of section {sid}")
    return errs


def check_turn(d: dict, prev: dict | None, reports: Reports) -> list[str]:
    """Problems of one turn given the previous turn of its dialogue (None on turn 1)."""
    errs: list[str] = []
    typ, q, sa = d["type"], d["question"], d["standalone"]
    if typ not in TYPES:
        return [f"unknown type {typ!r}"]
    if d["split"] not in SPLITS:
        errs.append(f"unknown split {d['split']!r}")
    if not isinstance(q, str) or not q.strip() or not isinstance(sa, str) or not sa.strip():
        return errs + ["empty question or standalone"]
    try:
        today = date.fromisoformat(d["today"])
    except (TypeError, ValueError):
        return errs + [f"today {d['today']!r} is not an ISO date"]

    if prev is None and typ != "fresh":
        errs.append("turn 1 must be fresh")
    if typ == "fresh":
        if sa != q:
            errs.append("fresh standalone must equal the question")
        if not any(p in q for p in PLACES):
            errs.append("fresh question names no place")
    elif typ == "more":
        if prev is not None and sa != prev["standalone"]:
            errs.append("more standalone must equal the previous standalone")
    else:
        if sa == q:
            errs.append(f"{typ} standalone equals the elliptic question")
        if prev is not None and sa == prev["standalone"]:
            errs.append(f"{typ} standalone equals the previous standalone")
    if prev is not None and typ in ("year", "place", "measure"):
        before = all_years(prev["standalone"], today)
        now = all_years(sa, today)
        asked = all_years(q, today)
        if typ == "year":
            if not asked:
                errs.append("year follow-up names no year")
            elif not asked <= written_years(sa):
                errs.append(f"year follow-up asks {sorted(asked)}, standalone has {sorted(written_years(sa))}")
            if now == before:
                errs.append("year follow-up keeps the previous year")
        elif now != before:
            errs.append(f"{typ} follow-up changes the year {sorted(before)} -> {sorted(now)}")

    report, gold, key = d["report"], d["gold_sections"], d["answer_key"]
    if not isinstance(gold, list) or not all(isinstance(g, str) for g in gold):
        return errs + [f"gold_sections {gold!r} is not a list of strings"]
    if report is None or key is None:
        if typ != "more" or report is not None or key is not None or gold:
            errs.append("only a more turn may leave report and answer_key null (with gold_sections [])")
        return errs
    if not isinstance(report, str) or held_out(report):
        return errs + [f"report {report!r} is held out for acceptance testing (not opened)"]
    if not reports.exists(report):
        return errs + [f"report {report!r} not in the corpus"]
    if not isinstance(key, str) or not key:
        return errs + ["answer_key missing"]
    problem = check_key(reports, report, key)
    if problem:
        errs.append(problem)
    if report == SEED:
        if not gold:
            errs.append("seed turn without gold_sections")
        errs += check_gold(reports, report, gold, key)
    elif gold:
        errs.append("library turn with gold_sections (must be [])")
    out = reports.published_year(report)
    if out is not None and out > today.year:
        errs.append(f"{report} came out in {out}, after today {d['today']}")
    if typ != "more":
        years = all_years(sa, today)
        target = any(w in sa for w in TARGET_WORDS)
        if len(years) > 1:
            errs.append(f"standalone names several years {sorted(years)}")
        elif years and not fits_year(report, next(iter(years)), target):
            kind = "target" if target else "actual figure"
            errs.append(f"{kind} for {next(iter(years))} from {report} (delivered {delivery_year(report)})")
    return errs


def load(path: Path) -> tuple[list[dict], int]:
    rows, failures = [], 0
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
        except json.JSONDecodeError as e:
            print(f"line {n}: bad JSON: {e}")
            failures += 1
            continue
        if not isinstance(d, dict) or list(d) != KEYS:
            print(f"line {n}: keys {list(d) if isinstance(d, dict) else d!r} != {KEYS}")
            failures += 1
            continue
        d["_line"] = n
        rows.append(d)
    return rows, failures


def dialogues(rows: list[dict]) -> tuple[list[list[dict]], list[str]]:
    """Group turns into dialogues; problems with ids, order and per-dialogue fields."""
    groups: list[list[dict]] = []
    errs: list[str] = []
    for d in rows:
        if groups and groups[-1][0]["conversation"] == d["conversation"]:
            groups[-1].append(d)
        else:
            groups.append([d])
    for n, g in enumerate(groups, 1):
        cid = g[0]["conversation"]
        if cid != f"dlg-{n:02d}":
            errs.append(f"line {g[0]['_line']}: conversation {cid!r}, expected dlg-{n:02d} (numbered, contiguous)")
        if [d["turn"] for d in g] != list(range(1, len(g) + 1)):
            errs.append(f"{cid}: turns {[d['turn'] for d in g]} not 1, 2, 3 …")
        for field in ("today", "split"):
            if len({d[field] for d in g}) != 1:
                errs.append(f"{cid}: {field} differs between turns")
        if n > 1 and g[0]["split"] == groups[n - 2][0]["split"]:
            errs.append(f"{cid}: same split as the previous dialogue (splits must alternate)")
    return groups, errs


def summary(groups: list[list[dict]]) -> list[str]:
    """Count table lines, and problems with the minimum counts and the balance of the halves."""
    lines, problems = [], []
    rows = [d for g in groups for d in g]

    def kind(d: dict) -> str:
        return "fresh-after-context" if d["type"] == "fresh" and d["turn"] > 1 else d["type"]

    by = Counter((kind(d), d["split"]) for d in rows)
    lines.append(f"{'type':<20} {'tune':>5} {'heldout':>8} {'total':>6}")
    for k in ("fresh", "fresh-after-context", "year", "place", "measure", "more"):
        total = by[k, "tune"] + by[k, "heldout"]
        label = "fresh (turn 1)" if k == "fresh" else k
        lines.append(f"{label:<20} {by[k, 'tune']:>5} {by[k, 'heldout']:>8} {total:>6}")
        if k in MIN_COUNTS and total < MIN_COUNTS[k]:
            problems.append(f"only {total} {k} turns (want >= {MIN_COUNTS[k]})")
        if k != "fresh" and (not by[k, "tune"] or not by[k, "heldout"]):
            problems.append(f"{k} is missing from a split")
    splits = Counter(d["split"] for d in rows)
    dsplits = Counter(g[0]["split"] for g in groups)
    lines.append(f"{'turns':<20} {splits['tune']:>5} {splits['heldout']:>8} {len(rows):>6}")
    lines.append(f"{'dialogues':<20} {dsplits['tune']:>5} {dsplits['heldout']:>8} {len(groups):>6}")
    if len(groups) < MIN_DIALOGUES:
        problems.append(f"only {len(groups)} dialogues (want >= {MIN_DIALOGUES})")
    if len(rows) < MIN_TURNS:
        problems.append(f"only {len(rows)} turns (want >= {MIN_TURNS})")
    if abs(dsplits["tune"] - dsplits["heldout"]) > 1:
        problems.append("dialogues are not split half and half")

    lengths = Counter(len(g) for g in groups)
    seed = [g for g in groups if any(d["report"] == SEED for d in g)]
    series = Counter(series_of(d["report"]) for d in rows if d["report"] and d["report"] != SEED)
    mixed = sum(1 for g in groups if len({d["type"] for d in g[1:]} - {"fresh"}) >= 2)
    relative = sum(1 for d in rows if d["type"] == "year" and any(w in d["question"] for w in RELATIVE))
    chinese = sum(1 for d in rows if d["type"] == "year" and CN_YEAR_RE.search(d["question"]))
    nulls = sum(1 for d in rows if d["report"] is None)
    lines.append("")
    lines.append(
        f"dialogue lengths {dict(sorted(lengths.items()))}; seed dialogues {len(seed)}; "
        f"dialogues mixing >= 2 follow-up types {mixed}"
    )
    lines.append(f"year follow-ups: relative {relative}, Chinese numerals {chinese}; more turns with null gold {nulls}")
    lines.append("library turns per series: " + ", ".join(f"{s} {n}" for s, n in series.most_common()))
    for n in (2, 3, 4):
        if not lengths[n]:
            problems.append(f"no {n}-turn dialogue")
    if len(seed) < MIN_SEED_DIALOGUES:
        problems.append(f"only {len(seed)} seed dialogues (want >= {MIN_SEED_DIALOGUES})")
    if len(series) < MIN_SERIES:
        problems.append(f"only {len(series)} library series (want >= {MIN_SERIES})")
    if mixed < MIN_MIXED:
        problems.append(f"only {mixed} dialogues mix follow-up types (want >= {MIN_MIXED})")
    if not relative or not chinese:
        problems.append("year follow-ups need both relative (去年/前年) and Chinese-numeral years")
    return lines + [f"PROBLEM: {p}" for p in problems]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("eval_file", nargs="?", type=Path, default=DEFAULT_EVAL)
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="directory holding reports.toml (seed)")
    ap.add_argument("--library", type=Path, default=DEFAULT_LIBRARY, help="the work-report library directory")
    args = ap.parse_args(argv)
    if held_out(str(args.eval_file)):
        print(f"{args.eval_file}: held-out file, not opened")
        return 1
    reports = Reports(args.corpus, args.library)
    rows, failures = load(args.eval_file)
    groups, errs = dialogues(rows)
    for e in errs:
        print(e)
    failures += len(errs)
    for g in groups:
        prev = None
        for d in g:
            for e in check_turn(d, prev, reports):
                print(f"line {d['_line']} {d['conversation']} turn {d['turn']}: {e}")
                failures += 1
            prev = d
    table = summary(groups)
    print("\n".join(table))
    failures += sum(1 for t in table if t.startswith("PROBLEM"))
    print(f"{failures} failure(s)" if failures else "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
