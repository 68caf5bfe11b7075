"""Check a library eval set (`corpus/eval/library-dev.jsonl` by default) against the report texts.

    python scripts/check_eval_library.py [EVAL.jsonl] [--corpus DIR]

For every line it checks that:

- the line is a JSON object with the keys `id, question, today, report, answer_key, timeline, split, lang,
  kind, series, years` in that order (plus `expect_note: true` last, on `relative` questions only);
- ids are unique; `today` is an ISO date; `split`, `lang` and `kind` take known values; `years` is a list of
  ints (one year for `actual`/`target`/`relative`, the timeline's years for `compare`, `[]` for `noyear`);
- `uncovered` questions have `report`, `answer_key` and `timeline` all null; every other question names a
  report that exists in the corpus, and `timeline`/`compare` questions carry a timeline (oldest first, one
  entry per year) whose newest entry gives `report` and `answer_key`;
- each `answer_key` and each timeline `answer` occurs in its report's text, inside one sentence as
  `retrieval.parse` splits sentences (several hits are allowed only when they are the same sentence repeated,
  as in reports whose text is duplicated);
- the report fits the year: an actual figure for year Y comes from the report delivered in Y+1, a target from
  the report delivered in Y (delivery year = the file-name suffix, with the known exceptions below).

Reports whose file name contains 盐田 or 龙岗 are held out for acceptance testing: the checker refuses to
open them. It prints the counts per kind, split and series, and exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from retrieval.document import ReportMeta  # noqa: E402
from retrieval.parse import parse_report  # noqa: E402
from retrieval.sources import read_report_text  # noqa: E402

KEYS = ["id", "question", "today", "report", "answer_key", "timeline", "split", "lang", "kind", "series", "years"]
KINDS = {"actual", "target", "noyear", "relative", "uncovered", "timeline", "compare"}
MIN_COUNTS = {"actual": 20, "target": 12, "noyear": 12, "relative": 14, "uncovered": 8, "timeline": 10, "compare": 6}
SPLITS = {"tune", "heldout"}
LANGS = {"zh", "zh-hant", "en", "mix"}
HELD_OUT = ("盐田", "龙岗")
# file-name suffix that is not the delivery year: this report reviews 2013 and plans 2014
DELIVERY_OVERRIDES = {"大鹏新区管委会2014年工作报告_2015": 2014}
DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "gov-work-reports"
DEFAULT_EVAL = Path(__file__).resolve().parents[1] / "corpus" / "eval" / "library-dev.jsonl"


class Reports:
    """Parsed reports by id (file stem), loaded once each."""

    def __init__(self, corpus: Path) -> None:
        self.corpus = corpus
        self._sentences: dict[str, list[str]] = {}

    def path(self, report_id: str) -> Path:
        return self.corpus / f"{report_id}.txt"

    def exists(self, report_id: str) -> bool:
        return not any(h in report_id for h in HELD_OUT) and self.path(report_id).is_file()

    def sentences(self, report_id: str) -> list[str]:
        if any(h in report_id for h in HELD_OUT):
            raise ValueError(f"{report_id}: held-out report, not opened")
        if report_id not in self._sentences:
            path = self.path(report_id)
            report = parse_report(read_report_text(path), ReportMeta(report_id, report_id, path.name))
            self._sentences[report_id] = [s.text for p in report.paragraphs() for s in p.sentences]
        return self._sentences[report_id]


def delivery_year(report_id: str) -> int | None:
    if report_id in DELIVERY_OVERRIDES:
        return DELIVERY_OVERRIDES[report_id]
    m = re.search(r"_(\d{4})年?$", report_id)
    return int(m.group(1)) if m else None


def check_key(reports: Reports, report_id: str, key: str) -> str | None:
    """None when `key` lies inside one sentence of the report, else what is wrong."""
    hits = {s for s in reports.sentences(report_id) if key in s}
    if not hits:
        text = read_report_text(reports.path(report_id))
        where = "in the text but across sentences or in a heading" if key in text else "not in the text"
        return f"{key!r}: {where} of {report_id}"
    if len(hits) > 1:
        return f"{key!r}: in {len(hits)} different sentences of {report_id}"
    return None


def check_line(d: object, reports: Reports, seen: set[str]) -> list[str]:
    if not isinstance(d, dict):
        return ["not a JSON object"]
    errs: list[str] = []
    keys = list(d)
    want = KEYS + (["expect_note"] if "expect_note" in d else [])
    if keys != want:
        return [f"keys {keys} != {want}"]
    if d["id"] in seen:
        errs.append(f"duplicate id {d['id']}")
    seen.add(d["id"])
    kind = d["kind"]
    if kind not in KINDS:
        errs.append(f"unknown kind {kind!r}")
    if d["split"] not in SPLITS:
        errs.append(f"unknown split {d['split']!r}")
    if d["lang"] not in LANGS:
        errs.append(f"unknown lang {d['lang']!r}")
    if not isinstance(d["question"], str) or not d["question"].strip():
        errs.append("empty question")
    if not isinstance(d["series"], str) or not d["series"]:
        errs.append("empty series")
    try:
        date.fromisoformat(d["today"])
    except (TypeError, ValueError):
        errs.append(f"today {d['today']!r} is not an ISO date")
    if "expect_note" in d and (d["expect_note"] is not True or kind != "relative"):
        errs.append("expect_note must be true and only on relative questions")
    years = d["years"]
    if not isinstance(years, list) or not all(isinstance(y, int) for y in years):
        return errs + [f"years {years!r} is not a list of ints"]
    if kind in ("actual", "target", "relative", "uncovered") and len(years) != 1:
        errs.append(f"{kind} needs exactly one year, got {years}")
    if kind == "noyear" and years:
        errs.append("noyear question with years")

    report, key, timeline = d["report"], d["answer_key"], d["timeline"]
    if kind == "uncovered":
        if report is not None or key is not None or timeline is not None:
            errs.append("uncovered needs report, answer_key and timeline null")
        return errs
    if isinstance(report, str) and any(h in report for h in HELD_OUT):
        return errs + [f"report {report!r} is held out for acceptance testing (not opened)"]
    if not isinstance(report, str) or not reports.exists(report):
        return errs + [f"report {report!r} not in the corpus"]
    if not isinstance(key, str) or not key:
        return errs + ["answer_key missing"]
    problem = check_key(reports, report, key)
    if problem:
        errs.append(problem)

    if kind in ("timeline", "compare"):
        if not isinstance(timeline, list) or not timeline:
            return errs + [f"{kind} needs a timeline"]
        tyears = []
        for e in timeline:
            if not isinstance(e, dict) or list(e) != ["year", "report", "answer"]:
                errs.append(f"timeline entry {e!r} needs keys year, report, answer")
                continue
            tyears.append(e["year"])
            if not reports.exists(e["report"]):
                errs.append(f"timeline report {e['report']!r} not in the corpus")
                continue
            problem = check_key(reports, e["report"], e["answer"])
            if problem:
                errs.append(f"timeline {e['year']}: {problem}")
            dy = delivery_year(e["report"])
            if dy not in (e["year"], e["year"] + 1):
                errs.append(f"timeline {e['year']}: report {e['report']} delivered {dy}")
        if tyears != sorted(set(tyears)):
            errs.append(f"timeline years {tyears} not oldest first / repeated")
        last = timeline[-1]
        if isinstance(last, dict) and (last.get("report") != report or last.get("answer") != key):
            errs.append("report/answer_key must be the newest timeline entry")
        if kind == "compare" and years != tyears:
            errs.append(f"compare years {years} != timeline years {tyears}")
        if years and not set(tyears) <= set(years):
            errs.append(f"timeline years {tyears} outside the question's years {years}")
    elif timeline is not None:
        errs.append(f"{kind} question with a timeline")

    dy = delivery_year(report)
    if kind == "actual" and dy != years[0] + 1:
        errs.append(f"actual figure for {years[0]} from a report delivered {dy}")
    if kind == "target" and dy != years[0]:
        errs.append(f"target for {years[0]} from a report delivered {dy}")
    if kind == "relative" and "expect_note" not in d and dy not in (years[0], years[0] + 1):
        errs.append(f"relative year {years[0]} from a report delivered {dy}")
    if kind == "relative" and "expect_note" in d and dy is not None and dy > years[0]:
        errs.append(f"expect_note but report delivered {dy} covers {years[0]}")
    return errs


def summary(rows: list[dict]) -> list[str]:
    """Count table lines, and problems with the balance of the halves."""
    lines, problems = [], []
    by = Counter((d["kind"], d["split"]) for d in rows)
    lines.append(f"{'kind':<10} {'tune':>5} {'heldout':>8} {'total':>6}")
    for kind in sorted(KINDS, key=list(MIN_COUNTS).index):
        total = by[kind, "tune"] + by[kind, "heldout"]
        lines.append(f"{kind:<10} {by[kind, 'tune']:>5} {by[kind, 'heldout']:>8} {total:>6}")
        if total < MIN_COUNTS[kind]:
            problems.append(f"only {total} {kind} questions (want >= {MIN_COUNTS[kind]})")
        if not by[kind, "tune"] or not by[kind, "heldout"]:
            problems.append(f"{kind} is missing from a split")
    series = Counter((d["series"], d["split"]) for d in rows)
    lines.append("")
    for s in dict.fromkeys(d["series"] for d in rows):
        lines.append(f"{s:<8} tune {series[s, 'tune']:>3}  heldout {series[s, 'heldout']:>3}")
        if not series[s, "tune"] or not series[s, "heldout"]:
            problems.append(f"series {s} is missing from a split")
    langs = Counter(d["lang"] for d in rows)
    notes = sum(1 for d in rows if d.get("expect_note"))
    lines.append("")
    lines.append(f"{len(rows)} questions; lang {dict(langs)}; expect_note {notes}")
    if notes < 4:
        problems.append(f"only {notes} expect_note questions (want >= 4)")
    return lines + [f"PROBLEM: {p}" for p in problems]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("eval_file", nargs="?", type=Path, default=DEFAULT_EVAL)
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    args = ap.parse_args(argv)
    reports = Reports(args.corpus)
    seen: set[str] = set()
    rows: list[dict] = []
    failures = 0
    for n, line in enumerate(args.eval_file.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
        except json.JSONDecodeError as e:
            print(f"line {n}: bad JSON: {e}")
            failures += 1
            continue
        errs = check_line(d, reports, seen)
        if isinstance(d, dict) and not errs:
            rows.append(d)
        for e in errs:
            print(f"line {n} {d.get('id') if isinstance(d, dict) else ''}: {e}")
        failures += len(errs)
    table = summary(rows)
    print("\n".join(table))
    failures += sum(1 for t in table if t.startswith("PROBLEM"))
    print(f"{failures} failure(s)" if failures else "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
