"""The evaluation harness behind `reportqa eval`: section-level quality of a question file.

Question files are JSON Lines (see corpus/eval/README.md): question, report_id, gold_sections,
answer_key, split, lang, kind. Out-of-scope questions have no gold sections. For every mode asked
for, every question is asked once (top 10) and scored:

- top-1 / recall@3 / MRR@10: a hit counts when its report and section id are gold (in-scope only);
- refusal precision / recall: "refused" = answered is false; the positives are the out-of-scope ones;
- wrongly refused: in-scope questions answered=false;
- answer-sentence hit rate: the answer key is inside the first hit's highlighted sentence(s).

Questions over a library of reports across years may instead (or also) give `"report"` (the report
id, or a title substring, the top hit must come from), `"answer"` (= answer_key), `"today"` (the
date relative years count from), `"timeline"` (a list of {"year", "report", "answer"} expected one
per year, oldest first) and `"expect_note"`. Those are scored on the report level (`TimeMetrics`):
right report, answer key highlighted, both (a single-year success), explicit years answered from a
report that does not cover them, uncovered years refused, the note shown, timeline coverage.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from retrieval.errors import InputError
from retrieval.normalize import fold_for_match

K_MRR = 10
EXPLICIT_KINDS = ("actual", "target", "uncovered")  # question kinds that name their year explicitly


@dataclass(frozen=True)
class TimelineKey:
    year: int
    report: str | None
    answer: str | None


@dataclass(frozen=True)
class EvalQuestion:
    qid: str
    question: str
    report_id: str | None
    gold_sections: tuple[str, ...]
    answer_key: str | None
    split: str
    lang: str
    kind: str
    report: str | None = None  # report id or title substring the top hit must come from (library sets)
    today: str | None = None  # ISO date relative years count from
    timeline: tuple[TimelineKey, ...] | None = None
    expect_note: bool = False
    years: tuple[int, ...] | None = None  # the years the question is about, as a person resolves them
    library: bool = False  # scored on the report level (has `report`/`timeline`/`today`)

    @property
    def in_scope(self) -> bool:
        if self.library:
            return self.report is not None or bool(self.timeline)
        return bool(self.gold_sections)


@dataclass
class QuestionResult:
    qid: str
    question: str
    split: str
    lang: str
    in_scope: bool
    answered: bool
    rank: int | None  # 1-based rank of the first gold hit within top 10, None if absent
    key_in_highlight: bool
    top: str  # "report_id#section_id" of the first hit, for reading failures
    top_score: float
    library: bool = False
    kind: str = ""
    right_report: bool = False  # the top hit comes from the expected report
    year_violation: bool = False  # answered an explicit year from a report not about that year
    note_shown: bool = False
    expect_note: bool = False
    timeline_expected: int = 0
    timeline_found: int = 0  # expected entries present: that year, that report, key highlighted
    timeline_extra: int = 0  # entries for years not expected
    timeline_ordered: bool = True  # entries oldest first, one per year


@dataclass
class Metrics:
    questions: int = 0
    in_scope: int = 0
    out_of_scope: int = 0
    top1: float = 0.0
    recall3: float = 0.0
    mrr10: float = 0.0
    refusal_precision: float = 0.0
    refusal_recall: float = 0.0
    wrongly_refused: float = 0.0
    sentence_hit: float = 0.0


@dataclass
class TimeMetrics:
    """Report-level quality of library questions (see the module docstring); rates over the questions
    each applies to, None when none does."""

    questions: int = 0
    single: int = 0  # questions answered by one passage (not timelines, not refusals)
    right_report: float | None = None
    key_highlighted: float | None = None  # right report and the answer key in the highlighted sentence
    explicit_violations: int = 0  # explicit-year questions answered from a passage about another year
    uncovered: int = 0
    uncovered_refused: float | None = None
    notes_expected: int = 0
    note_shown: float | None = None
    timelines: int = 0
    timeline_coverage: float | None = None  # expected per-year entries found / expected
    timeline_extra: int = 0  # entries for years not expected
    timeline_ordered: float | None = None


def aggregate_library(results: Iterable[QuestionResult]) -> TimeMetrics:
    rs = [r for r in results if r.library]
    single = [r for r in rs if r.in_scope and not r.timeline_expected]
    uncovered = [r for r in rs if not r.in_scope]
    noted = [r for r in rs if r.expect_note]
    timelines = [r for r in rs if r.timeline_expected]

    def rate(items, pred):
        return sum(1 for r in items if pred(r)) / len(items) if items else None

    expected = sum(r.timeline_expected for r in timelines)
    return TimeMetrics(
        questions=len(rs),
        single=len(single),
        right_report=rate(single, lambda r: r.answered and r.right_report),
        key_highlighted=rate(single, lambda r: r.answered and r.key_in_highlight),
        explicit_violations=sum(r.year_violation for r in rs),
        uncovered=len(uncovered),
        uncovered_refused=rate(uncovered, lambda r: not r.answered),
        notes_expected=len(noted),
        note_shown=rate(noted, lambda r: r.note_shown),
        timelines=len(timelines),
        timeline_coverage=sum(r.timeline_found for r in timelines) / expected if expected else None,
        timeline_extra=sum(r.timeline_extra for r in timelines),
        timeline_ordered=rate(timelines, lambda r: r.timeline_ordered),
    )


@dataclass
class EvalReport:
    source: str
    rows: dict[str, dict[str, Metrics]] = field(default_factory=dict)  # mode -> split -> metrics
    results: dict[str, list[QuestionResult]] = field(default_factory=dict)  # mode -> per question
    time_rows: dict[str, dict[str, TimeMetrics]] = field(default_factory=dict)  # mode -> split/kind -> metrics

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "metrics": {m: {s: asdict(v) for s, v in by.items()} for m, by in self.rows.items()},
            "library": {m: {s: asdict(v) for s, v in by.items()} for m, by in self.time_rows.items()},
            "failures": {
                m: [asdict(r) for r in rs if _failed(r)] for m, rs in self.results.items()
            },
        }

    def to_text(self, max_failures: int = 15) -> str:
        head = (
            f"{'mode':8} {'split':8} {'n':>4} {'in':>4} {'oos':>4} {'top1':>6} {'R@3':>6} {'MRR10':>6} "
            f"{'refP':>6} {'refR':>6} {'wrongR':>6} {'sent':>6}"
        )
        lines = [f"eval: {self.source}"]
        if self.rows:
            lines += [head, "-" * len(head)]
        for mode, by in self.rows.items():
            for split, m in by.items():
                lines.append(
                    f"{mode:8} {split:8} {m.questions:4d} {m.in_scope:4d} {m.out_of_scope:4d} "
                    f"{m.top1:6.3f} {m.recall3:6.3f} {m.mrr10:6.3f} {m.refusal_precision:6.3f} "
                    f"{m.refusal_recall:6.3f} {m.wrongly_refused:6.3f} {m.sentence_hit:6.3f}"
                )
        if self.time_rows:
            lines.append(_time_table(self.time_rows))
        for mode, rs in self.results.items():
            fails = [r for r in rs if _failed(r)]
            if not fails:
                continue
            lines.append(f"\n{mode}: {len(fails)} questions with a miss (first {max_failures}):")
            for r in fails[:max_failures]:
                what = []
                if r.in_scope and r.rank != 1:
                    what.append(f"gold rank {r.rank or '>10'}")
                if r.in_scope and not r.answered:
                    what.append("refused")
                if r.in_scope and not r.key_in_highlight:
                    what.append("key not highlighted")
                if r.library:
                    what = _library_failure(r)
                elif not r.in_scope and r.answered:
                    what.append("answered out-of-scope")
                lines.append(f"  [{r.qid} {r.split}] {r.question} -> {r.top} ({r.top_score:.3f}): "
                             + ", ".join(what))
        return "\n".join(lines)


def _fmt(v: float | None) -> str:
    return "   -  " if v is None else f"{v:6.3f}"


def _time_table(rows: dict[str, dict[str, TimeMetrics]]) -> str:
    head = (
        f"{'mode':8} {'split/kind':14} {'n':>4} {'single':>6} {'report':>6} {'key':>6} {'yrViol':>6} "
        f"{'uncov':>5} {'refus':>6} {'notes':>5} {'noted':>6} {'tlines':>6} {'tlcov':>6} {'extra':>5} {'order':>6}"
    )
    out = ["", "library questions (report level): report = right report; key = right report and answer key",
           "highlighted; yrViol = explicit years answered from a passage about another year; refus = uncovered",
           "years refused; noted = note shown where expected; tlcov = timeline entries found / expected",
           head, "-" * len(head)]
    for mode, by in rows.items():
        for name, m in by.items():
            out.append(
                f"{mode:8} {name:14} {m.questions:4d} {m.single:6d} {_fmt(m.right_report)} {_fmt(m.key_highlighted)} "
                f"{m.explicit_violations:6d} {m.uncovered:5d} {_fmt(m.uncovered_refused)} {m.notes_expected:5d} "
                f"{_fmt(m.note_shown)} {m.timelines:6d} {_fmt(m.timeline_coverage)} {m.timeline_extra:5d} "
                f"{_fmt(m.timeline_ordered)}"
            )
    return "\n".join(out)


def _library_failure(r: QuestionResult) -> list[str]:
    what = []
    if r.timeline_expected:
        what.append(f"timeline {r.timeline_found}/{r.timeline_expected}")
        if r.timeline_extra:
            what.append(f"{r.timeline_extra} extra")
        if not r.timeline_ordered:
            what.append("out of order")
    elif not r.in_scope:
        if r.answered:
            what.append("uncovered year answered")
    else:
        if not r.answered:
            what.append("refused")
        if not r.right_report:
            what.append("wrong report")
        elif not r.key_in_highlight:
            what.append("key not highlighted")
        if r.expect_note and not r.note_shown:
            what.append("no note")
    if r.year_violation:
        what.append("answered from another year")
    return what


def _failed(r: QuestionResult) -> bool:
    if r.library:
        if r.timeline_expected:
            return r.timeline_found < r.timeline_expected or r.timeline_extra > 0 or not r.timeline_ordered
        if not r.in_scope:
            return r.answered
        return not (r.answered and r.right_report and r.key_in_highlight) or (r.expect_note and not r.note_shown)
    if r.in_scope:
        return r.rank != 1 or not r.answered or not r.key_in_highlight
    return r.answered


def load_questions(path: Path) -> list[EvalQuestion]:
    """Parse a question file; one clear InputError naming the line for anything malformed."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise InputError(f"{path}: question file not found") from e
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read question file ({e})") from e
    out: list[EvalQuestion] = []
    for n, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            if not isinstance(d, dict):
                raise TypeError("expected a JSON object")
            library = any(k in d for k in ("report", "timeline", "today", "expect_note"))
            timeline = None
            if d.get("timeline"):
                timeline = tuple(
                    TimelineKey(int(t["year"]), t.get("report"), t.get("answer")) for t in d["timeline"]
                )
            today = d.get("today")
            if today is not None:
                from datetime import date

                date.fromisoformat(str(today))
            q = EvalQuestion(
                qid=str(d.get("id", f"line{n}")),
                question=str(d["question"]),
                report_id=d.get("report_id"),
                gold_sections=tuple(str(s) for s in d.get("gold_sections") or ()),
                answer_key=d.get("answer_key", d.get("answer")),
                split=str(d.get("split", "all")),
                lang=str(d.get("lang", "zh")),
                kind=str(d.get("kind", "")),
                report=d.get("report"),
                today=str(today) if today is not None else None,
                timeline=timeline,
                expect_note=bool(d.get("expect_note", False)),
                years=tuple(int(y) for y in d["years"]) if d.get("years") is not None else None,
                library=library,
            )
        except (ValueError, KeyError, TypeError) as e:
            raise InputError(f"{path}:{n}: not a valid question line ({e})") from e
        out.append(q)
    if not out:
        raise InputError(f"{path}: no questions in file")
    return out


def _report_matches(hit, wanted: str | None) -> bool:
    """`wanted` is a report id or a substring of the report's title (as cited, with its year)."""
    if wanted is None or hit is None:
        return False
    return hit.report_id == wanted or wanted in hit.report_title or wanted in hit.citation


def _key_in(key: str | None, text: str) -> bool:
    return bool(key) and fold_for_match(key) in fold_for_match(text)


def score_library(q: EvalQuestion, answer) -> QuestionResult:
    """Report-level scoring of a question over a library of reports (see the module docstring)."""
    top = answer.hits[0] if answer.hits else None
    right = _report_matches(top, q.report)
    key_hit = right and top is not None and _key_in(q.answer_key, top.highlight)
    violation = False  # an explicit year answered from a passage not about that year
    if answer.answered and top is not None and q.kind in EXPLICIT_KINDS and q.years and len(q.years) == 1:
        violation = top.period != q.years[0]
    found = extra = 0
    ordered = True
    if q.timeline:
        entries = answer.timeline or []
        years = [e.period for e in entries]
        ordered = years == sorted(years) and len(set(years)) == len(years)
        wanted = {t.year: t for t in q.timeline}
        for e in entries:
            t = wanted.get(e.period)
            if t is None:
                extra += 1
            elif (t.report is None or _report_matches(e, t.report)) and (
                t.answer is None or _key_in(t.answer, e.highlight)
            ):
                found += 1
    return QuestionResult(
        qid=q.qid, question=q.question, split=q.split, lang=q.lang, in_scope=q.in_scope,
        answered=answer.answered, rank=1 if right else None, key_in_highlight=key_hit,
        top=f"{top.report_id}#{top.section_id}" if top else "-",
        top_score=float(top.score) if top else 0.0, library=True, kind=q.kind, right_report=right,
        year_violation=violation, note_shown=bool(answer.note), expect_note=q.expect_note,
        timeline_expected=len(q.timeline or ()), timeline_found=found, timeline_extra=extra,
        timeline_ordered=ordered,
    )


def score_question(q: EvalQuestion, answer) -> QuestionResult:
    """Score one Answer (top 10 hits) against its gold labels."""
    if q.library:
        return score_library(q, answer)
    rank = None
    for i, h in enumerate(answer.hits[:K_MRR], 1):
        if h.section_id in q.gold_sections and (q.report_id is None or h.report_id == q.report_id):
            rank = i
            break
    key_hit = False
    if q.in_scope and q.answer_key and answer.hits:
        key_hit = fold_for_match(q.answer_key) in fold_for_match(answer.hits[0].highlight)
    top = f"{answer.hits[0].report_id}#{answer.hits[0].section_id}" if answer.hits else "-"
    return QuestionResult(
        qid=q.qid,
        question=q.question,
        split=q.split,
        lang=q.lang,
        in_scope=q.in_scope,
        answered=answer.answered,
        rank=rank,
        key_in_highlight=key_hit,
        top=top,
        top_score=float(answer.hits[0].score) if answer.hits else 0.0,
    )


def _lang_group(lang: str) -> str:
    return "en" if lang == "en" else "zh"


def aggregate(results: Iterable[QuestionResult]) -> Metrics:
    rs = list(results)
    ins = [r for r in rs if r.in_scope]
    oos = [r for r in rs if not r.in_scope]
    refused = [r for r in rs if not r.answered]
    refused_oos = [r for r in oos if not r.answered]

    def frac(a: int, b: int) -> float:
        return a / b if b else 0.0

    return Metrics(
        questions=len(rs),
        in_scope=len(ins),
        out_of_scope=len(oos),
        top1=frac(sum(r.rank == 1 for r in ins), len(ins)),
        recall3=frac(sum(r.rank is not None and r.rank <= 3 for r in ins), len(ins)),
        mrr10=frac(sum(1.0 / r.rank for r in ins if r.rank), len(ins)) if ins else 0.0,
        refusal_precision=frac(len(refused_oos), len(refused)) if refused else (1.0 if oos else 0.0),
        refusal_recall=frac(len(refused_oos), len(oos)),
        wrongly_refused=frac(sum(not r.answered for r in ins), len(ins)),
        sentence_hit=frac(sum(r.key_in_highlight for r in ins), len(ins)),
    )


def only_split(items: Sequence, split: str | None, source: str = "", split_of=lambda item: item.split) -> list:
    """The items of one split (questions; or dialogues, with `split_of` giving a dialogue's split), so
    tuning never asks or prints the held-out ones; all of them when `split` is None. InputError when
    the file has none of that split."""
    if split is None:
        return list(items)
    kept = [item for item in items if split_of(item) == split]
    if not kept:
        have = ", ".join(sorted({split_of(item) for item in items})) or "none"
        raise InputError(f"{source}: no questions with split {split!r} (the file has: {have})")
    return kept


def evaluate_questions(
    retriever, questions: Sequence[EvalQuestion], modes: Sequence[str] = ("hybrid",), source: str = ""
) -> EvalReport:
    known = {m.report_id for m in retriever.reports}
    missing = sorted({q.report_id for q in questions if q.report_id and q.report_id not in known})
    if missing:
        raise InputError(
            f"{source}: questions refer to reports not in the corpus: {', '.join(missing[:3])} "
            "(pass the corpus that holds them with --corpus)"
        )
    from datetime import date

    report = EvalReport(source=source)
    for mode in modes:
        results = [
            score_question(
                q,
                retriever.ask(q.question, top_k=K_MRR, mode=mode,
                              today=date.fromisoformat(q.today) if q.today else None),
            )
            for q in questions
        ]
        report.results[mode] = results
        classic = [r for r in results if not r.library]
        if classic:
            by_split: dict[str, Metrics] = {}
            for split in sorted({r.split for r in classic}):
                by_split[split] = aggregate(r for r in classic if r.split == split)
            if len(by_split) > 1:
                by_split["all"] = aggregate(classic)
            langs = sorted({_lang_group(r.lang) for r in classic})
            if len(langs) > 1:  # English and Chinese separately (Chinese = simplified, traditional, mixed)
                for split in sorted({r.split for r in classic}):
                    for lang in langs:
                        by_split[f"{split[:4]}/{lang}"] = aggregate(
                            r for r in classic if r.split == split and _lang_group(r.lang) == lang
                        )
            report.rows[mode] = by_split
        library = [r for r in results if r.library]
        if library:
            by: dict[str, TimeMetrics] = {}
            for split in sorted({r.split for r in library}):
                by[split] = aggregate_library(r for r in library if r.split == split)
            if len(by) > 1:
                by["all"] = aggregate_library(library)
            for split in sorted({r.split for r in library}):
                for kind in sorted({r.kind for r in library if r.split == split}):
                    by[f"{split[:4]}/{kind}"] = aggregate_library(
                        r for r in library if r.split == split and r.kind == kind
                    )
            report.time_rows[mode] = by
    return report


def evaluate_file(retriever, path: Path, modes: Sequence[str] = ("hybrid",)) -> EvalReport:
    """`reportqa eval FILE --mode …`: every mode in one run, per split (JSON Lines question files)."""
    return evaluate_questions(retriever, load_questions(Path(path)), modes, source=str(path))


# ------------------------------------------------------------------ passage benchmark (SQuAD JSON)


@dataclass
class PassageMetrics:
    mode: str
    questions: int
    r1: float
    r5: float
    mrr10: float
    seconds: float


@dataclass
class PassageBenchReport:
    source: str
    passages: int
    rows: list[PassageMetrics] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"source": self.source, "passages": self.passages, "metrics": [asdict(r) for r in self.rows]}

    def to_text(self) -> str:
        lines = [
            f"passage retrieval: {self.source} ({self.passages} passages)",
            f"{'mode':8} {'n':>5} {'R@1':>6} {'R@5':>6} {'MRR10':>6} {'q/s':>7}",
        ]
        for r in self.rows:
            qps = r.questions / r.seconds if r.seconds else 0.0
            lines.append(f"{r.mode:8} {r.questions:5d} {r.r1:6.3f} {r.r5:6.3f} {r.mrr10:6.3f} {qps:7.1f}")
        return "\n".join(lines)


def is_squad_file(path: Path) -> bool:
    return Path(path).suffix == ".json"


def squad_reports(data: dict) -> tuple[list, list[tuple[str, str]]]:
    """SQuAD-style JSON → one single-paragraph Report per context, and (question, context id) pairs."""
    from retrieval.document import Paragraph, Report, ReportMeta, Section
    from retrieval.parse import split_sentences

    reports, questions = [], []
    for article in data.get("data", []):
        for para in article.get("paragraphs", []):
            pid, text = str(para["id"]), str(para["context"]).strip()
            if not text:
                continue
            meta = ReportMeta(report_id=pid, title=str(article.get("title", pid)), file=pid)
            paragraph = Paragraph(text, 0, len(text), split_sentences(text), "0", 0)
            section = Section("0", "", "", 0, 0, len(text), [paragraph])
            reports.append(Report(meta=meta, text=text, sections=[section]))
            questions.extend((qa["question"], pid) for qa in para.get("qas", []))
    return reports, questions


def evaluate_squad(path: Path, settings, modes: Sequence[str] = ("hybrid",), limit: int | None = None,
                   progress: bool = False) -> PassageBenchReport:
    """Index every context of a SQuAD-style file and score passage R@1/R@5/MRR@10 per mode."""
    import hashlib
    import time

    from retrieval.retriever import Retriever

    try:
        raw = Path(path).read_bytes()
        data = json.loads(raw)
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: not a readable SQuAD-style JSON file ({e})") from e
    reports, questions = squad_reports(data)
    if not reports or not questions:
        raise InputError(f"{path}: no passages or questions found (expected SQuAD-style JSON)")
    if limit:
        questions = questions[:limit]
    name = "bench-" + hashlib.sha256(raw).hexdigest()[:12]
    retriever = Retriever.from_reports(reports, settings, name=name, progress=progress)
    out = PassageBenchReport(source=str(path), passages=len(reports))
    for mode in modes:
        t0 = time.perf_counter()
        ranks = []
        for question, gold in questions:
            try:
                hits = retriever.ask(question, top_k=K_MRR, mode=mode).hits
            except InputError:
                hits = []
            ranks.append(next((i for i, h in enumerate(hits, 1) if h.report_id == gold), None))
        n = len(ranks)
        out.rows.append(
            PassageMetrics(
                mode=mode,
                questions=n,
                r1=sum(r == 1 for r in ranks) / n,
                r5=sum(r is not None and r <= 5 for r in ranks) / n,
                mrr10=sum(1 / r for r in ranks if r) / n,
                seconds=time.perf_counter() - t0,
            )
        )
    return out
