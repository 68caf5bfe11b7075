"""The evaluation harness behind `reportqa eval`: section-level quality of a question file.

Question files are JSON Lines (see corpus/eval/README.md): question, report_id, gold_sections,
answer_key, split, lang, kind. Out-of-scope questions have no gold sections. For every mode asked
for, every question is asked once (top 10) and scored:

- top-1 / recall@3 / MRR@10: a hit counts when its report and section id are gold (in-scope only);
- refusal precision / recall: "refused" = answered is false; the positives are the out-of-scope ones;
- wrongly refused: in-scope questions answered=false;
- answer-sentence hit rate: the answer key is inside the first hit's highlighted sentence(s).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from retrieval.errors import InputError
from retrieval.normalize import fold_for_match

K_MRR = 10


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

    @property
    def in_scope(self) -> bool:
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
class EvalReport:
    source: str
    rows: dict[str, dict[str, Metrics]] = field(default_factory=dict)  # mode -> split -> metrics
    results: dict[str, list[QuestionResult]] = field(default_factory=dict)  # mode -> per question

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "metrics": {m: {s: asdict(v) for s, v in by.items()} for m, by in self.rows.items()},
            "failures": {
                m: [asdict(r) for r in rs if _failed(r)] for m, rs in self.results.items()
            },
        }

    def to_text(self, max_failures: int = 15) -> str:
        head = (
            f"{'mode':8} {'split':8} {'n':>4} {'in':>4} {'oos':>4} {'top1':>6} {'R@3':>6} {'MRR10':>6} "
            f"{'refP':>6} {'refR':>6} {'wrongR':>6} {'sent':>6}"
        )
        lines = [f"eval: {self.source}", head, "-" * len(head)]
        for mode, by in self.rows.items():
            for split, m in by.items():
                lines.append(
                    f"{mode:8} {split:8} {m.questions:4d} {m.in_scope:4d} {m.out_of_scope:4d} "
                    f"{m.top1:6.3f} {m.recall3:6.3f} {m.mrr10:6.3f} {m.refusal_precision:6.3f} "
                    f"{m.refusal_recall:6.3f} {m.wrongly_refused:6.3f} {m.sentence_hit:6.3f}"
                )
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
                if not r.in_scope and r.answered:
                    what.append("answered out-of-scope")
                lines.append(f"  [{r.qid} {r.split}] {r.question} -> {r.top} ({r.top_score:.3f}): "
                             + ", ".join(what))
        return "\n".join(lines)


def _failed(r: QuestionResult) -> bool:
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
            q = EvalQuestion(
                qid=str(d.get("id", f"line{n}")),
                question=str(d["question"]),
                report_id=d.get("report_id"),
                gold_sections=tuple(str(s) for s in d.get("gold_sections") or ()),
                answer_key=d.get("answer_key"),
                split=str(d.get("split", "all")),
                lang=str(d.get("lang", "zh")),
                kind=str(d.get("kind", "")),
            )
        except (ValueError, KeyError, TypeError) as e:
            raise InputError(f"{path}:{n}: not a valid question line ({e})") from e
        out.append(q)
    if not out:
        raise InputError(f"{path}: no questions in file")
    return out


def score_question(q: EvalQuestion, answer) -> QuestionResult:
    """Score one Answer (top 10 hits) against its gold labels."""
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
    report = EvalReport(source=source)
    for mode in modes:
        results = [score_question(q, retriever.ask(q.question, top_k=K_MRR, mode=mode)) for q in questions]
        report.results[mode] = results
        by_split: dict[str, Metrics] = {}
        for split in sorted({r.split for r in results}):
            by_split[split] = aggregate(r for r in results if r.split == split)
        if len(by_split) > 1:
            by_split["all"] = aggregate(results)
        report.rows[mode] = by_split
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
