"""`reportqa bench`: the speed and memory figures the README quotes, measured on this machine.

For the seed corpus (and with --full, for the seed plus every report in ../shared/corpora):
- index build from nothing: `reportqa index build` as a process of its own, its seconds and peak
  RSS (the model directory is reused; its build time is reported by `make run`'s first run and by
  scripts/bench_embedder.py);
- warm query latency p50/p95, in process, over the dev questions (hybrid mode);
- cold start: a fresh `reportqa ask` process, index already built, start to printed answer, and
  that process's peak RSS (what serving costs);
- at full scale also: whether questions about Hengyang still land in the Hengyang report, the
  recall@10 of an HNSW index against exact search over the same vectors, and a report added to and
  removed from the library (`reports add` / `reports remove`, each followed by the next `ask`, as
  new processes: what staff wait for).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from retrieval.config import REPO_ROOT, Settings
from retrieval.errors import InputError

SHARED_CORPORA = REPO_ROOT.parent / "shared" / "corpora"
DEV_QUESTIONS = REPO_ROOT / "corpus" / "eval" / "hengyang-dev.jsonl"
LIBRARY_QUESTIONS = REPO_ROOT / "corpus" / "eval" / "library-dev.jsonl"
DIALOGUES = REPO_ROOT / "corpus" / "eval" / "dialogues-dev.jsonl"
SEED_REPORT = "hengyang-2019-fazhi"
ADDED_REPORT = REPO_ROOT / "tests" / "fixtures" / "published" / "pingshan-2019.pdf"  # 27 pages, not in the library


COLD_RUNS = 3  # cold asks per corpus; the median is reported

@dataclass
class CorpusBench:
    name: str
    reports: int
    paragraphs: int
    sentences: int
    build_seconds: float
    query_p50_ms: float
    query_p95_ms: float
    queries: int
    cold_ask_seconds: float  # median of COLD_RUNS new processes, after the first ask below
    cold_ask_rss_mb: float
    index_mb: float
    first_ask_seconds: float = 0.0  # the first ask after the build: it also fills the parse cache
    cold_ask_runs: list[float] = field(default_factory=list)
    build_peak_rss_mb: float = 0.0  # peak RSS of the `reportqa index build` process
    add_ask_seconds: float = 0.0  # full only: `reports add` a 27-page PDF, then the next `ask`
    remove_ask_seconds: float = 0.0  # full only: `reports remove` it again, then the next `ask`
    extra: dict = field(default_factory=dict)


@dataclass
class BenchReport:
    rows: list[CorpusBench] = field(default_factory=list)
    peak_rss_mb: float = 0.0  # this process: includes both index builds
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)  # os.getloadavg() at start and end
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    runs: int = 1  # > 1: every number is the median over that many whole runs (see median_of)

    def to_dict(self) -> dict:
        return {"corpora": [asdict(r) for r in self.rows], "bench_process_peak_rss_mb": self.peak_rss_mb,
                "load_average_before": list(self.load_before), "load_average_after": list(self.load_after),
                "runs": self.runs}

    def to_text(self) -> str:
        lines = [f"median of {self.runs} runs"] if self.runs > 1 else []
        lines += [
            f"{'corpus':8} {'reports':>7} {'paras':>6} {'sents':>6} {'build s':>8} {'p50 ms':>7} {'p95 ms':>7} "
            f"{'cold ask s':>10} {'ask RSS MB':>10} {'index MB':>8}"
        ]
        for r in self.rows:
            lines.append(
                f"{r.name:8} {r.reports:7d} {r.paragraphs:6d} {r.sentences:6d} {r.build_seconds:8.1f} "
                f"{r.query_p50_ms:7.1f} {r.query_p95_ms:7.1f} {r.cold_ask_seconds:10.2f} {r.cold_ask_rss_mb:10.0f} "
                f"{r.index_mb:8.1f}"
            )
            runs = " / ".join(f"{s:.2f}" for s in r.cold_ask_runs)
            lines.append(f"    cold ask s: median of {runs}; the first ask after the build (fills the parse "
                         f"cache): {r.first_ask_seconds:.2f}")
            lines.append(f"    peak RSS of `reportqa index build` (from nothing): {r.build_peak_rss_mb:.0f} MB")
            if r.add_ask_seconds:
                lines.append(f"    add a 27-page PDF + next ask: {r.add_ask_seconds:.1f} s; remove it + next ask: "
                             f"{r.remove_ask_seconds:.1f} s")
            for k, v in r.extra.items():
                lines.append(f"    {k}: {v}")
        lines.append(f"peak RSS of the bench process (both index builds, then the queries): {self.peak_rss_mb:.0f} MB")
        load = " ".join(f"{x:.2f}" for x in self.load_before), " ".join(f"{x:.2f}" for x in self.load_after)
        lines.append(f"load average (1/5/15 min) before: {load[0]}; after: {load[1]}")
        return "\n".join(lines)


_MEDIAN_FIELDS = ("build_seconds", "query_p50_ms", "query_p95_ms", "cold_ask_seconds", "cold_ask_rss_mb",
                  "index_mb", "first_ask_seconds", "build_peak_rss_mb", "add_ask_seconds", "remove_ask_seconds")


def median_of(reports: list[BenchReport]) -> BenchReport:
    """One report from several whole runs: each number is the median over the runs; the cold-ask
    list holds every run's asks; the text extras (recall, library latency) are the first run's."""
    first = reports[0]
    rows = []
    for i, row in enumerate(first.rows):
        same = [r.rows[i] for r in reports]
        values = {f: statistics.median(getattr(r, f) for r in same) for f in _MEDIAN_FIELDS}
        rows.append(replace(row, **values, cold_ask_runs=[s for r in same for s in r.cold_ask_runs]))
    return BenchReport(rows=rows, peak_rss_mb=statistics.median(r.peak_rss_mb for r in reports),
                       load_before=first.load_before, load_after=reports[-1].load_after, runs=len(reports))


def _questions() -> list[str]:
    return [json.loads(line)["question"] for line in DEV_QUESTIONS.read_text(encoding="utf-8").splitlines() if line]


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q)) if values else 0.0


def _child(settings: Settings, *args: str) -> tuple[float, float]:
    """Run `reportqa ARGS` as a new process over these settings: (seconds start to exit, its peak RSS in MB).

    The peak is VmHWM from /proc, polled until the process exits: getrusage would also count the
    pages the child shared with this (large) process between fork and exec.
    """
    exe = shutil.which("reportqa") or str(Path(sys.executable).with_name("reportqa"))
    env = dict(os.environ)
    env["REPORTQA_HOME"] = str(settings.home)
    env["REPORTQA_CORPUS"] = os.pathsep.join(str(d) for d in settings.corpus_dirs)
    env["REPORTQA_MODEL"] = settings.model
    # As on any installed machine, the modules' bytecode is cached (the first ask, not timed, writes it);
    # a shell with PYTHONDONTWRITEBYTECODE=1 would otherwise compile ~40 modules in every ask (+80 ms).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    t0 = time.perf_counter()
    proc = subprocess.Popen([exe, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak_kb = 0
    status = Path(f"/proc/{proc.pid}/status")
    while proc.poll() is None:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak_kb = max(peak_kb, int(line.split()[1]))
        except (OSError, ValueError):
            pass
        time.sleep(0.005)
    seconds = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        err = proc.stderr.read().decode("utf-8", "replace").strip() if proc.stderr else ""
        raise InputError(f"`reportqa {' '.join(args)[:60]}` failed: {err[-300:]}")
    return seconds, peak_kb / 1024


def _cold_ask(settings: Settings, question: str) -> tuple[float, float]:
    """A fresh `reportqa ask`: seconds from process start to printed answer, and its peak RSS in MB."""
    return _child(settings, "ask", question)


def add_and_remove(settings: Settings, question: str = "2019年衡阳市调解了多少矛盾纠纷") -> tuple[float, float]:
    """Seconds of `reports add ADDED_REPORT` + the next `ask`, and of `reports remove` + the next `ask`,
    over the built library. The first corpus directory (where `reports add` writes) is a temporary
    copy, so the repository's corpus is never touched."""
    first = Path(settings.corpus_dirs[0])
    with tempfile.TemporaryDirectory(prefix="reportqa-bench-add-") as tmp:
        copy = Path(tmp) / first.name
        shutil.copytree(first, copy, ignore=shutil.ignore_patterns(".*"))
        library = replace(settings, corpus_dirs=(copy, *settings.corpus_dirs[1:]))
        _child(library, "ask", question)  # the copy's paths are new to the index: noted once, not timed
        add = _child(library, "reports", "add", str(ADDED_REPORT), "--id", "bench-added")[0]
        add += _child(library, "ask", question)[0]
        listed = "bench-added" in (copy / "reports.toml").read_text(encoding="utf-8")
        remove = _child(library, "reports", "remove", "bench-added")[0]
        remove += _child(library, "ask", question)[0]
        if not listed or "bench-added" in (copy / "reports.toml").read_text(encoding="utf-8"):
            raise InputError(f"bench: adding or removing {ADDED_REPORT.name} did not change {copy / 'reports.toml'}")
    return add, remove


def bench_corpus(name: str, settings: Settings, *, skip_invalid: bool = False) -> tuple[CorpusBench, object]:
    from retrieval.corpus import load_corpus
    from retrieval.index_store import IndexStore
    from retrieval.retriever import Retriever

    # The build is `reportqa index build` from nothing, in a process of its own: its time and peak
    # RSS are what staff see; this process then opens the index it wrote for the query figures.
    build, build_rss = _child(settings, "index", "build")
    reports = load_corpus(settings.corpus_dirs, skip_invalid=skip_invalid)
    retriever = Retriever.from_reports(reports, settings)

    questions = _questions()
    retriever.ask(questions[0])  # warm: first call loads lazy pieces
    times = []
    for q in questions:
        t = time.perf_counter()
        retriever.ask(q)
        times.append((time.perf_counter() - t) * 1000)
    question = "2019年衡阳调解了多少矛盾纠纷？"
    first, _ = _cold_ask(settings, question)
    runs = [_cold_ask(settings, question) for _ in range(COLD_RUNS)]
    cold, rss = statistics.median(s for s, _ in runs), max(m for _, m in runs)
    status = retriever.status()
    row = CorpusBench(
        name=name,
        reports=len(reports),
        paragraphs=status.paragraphs,
        sentences=int(len(retriever._index.sentence_vectors)),
        build_seconds=build,
        query_p50_ms=statistics.median(times),
        query_p95_ms=_percentile(times, 95),
        queries=len(times),
        cold_ask_seconds=cold,
        cold_ask_rss_mb=rss,
        first_ask_seconds=first,
        cold_ask_runs=[s for s, _ in runs],
        build_peak_rss_mb=build_rss,
        index_mb=IndexStore(settings.index_dir / "corpus").size_bytes() / 1e6,
    )
    return row, retriever


def hengyang_at_scale(retriever) -> dict:
    """With every report indexed, do questions about Hengyang still land in the Hengyang report?

    Only questions that name the city (衡阳/衡陽) are "about Hengyang" to a 150-report corpus; the
    others ("政府常务会开会前请人讲了几次法") fit many reports equally and are reported separately.
    """
    from retrieval.evaluate import aggregate, evaluate_file

    rep = evaluate_file(retriever, DEV_QUESTIONS, ("hybrid",))
    ins = [r for r in rep.results["hybrid"] if r.in_scope]
    named = [r for r in ins if "衡阳" in r.question or "衡陽" in r.question]

    def in_report(rs) -> float:
        return sum(r.top.startswith(SEED_REPORT + "#") for r in rs) / max(1, len(rs))

    m_named, m_all = aggregate(named), aggregate(ins)
    return {
        f"questions naming 衡阳 ({len(named)}): top hit in the Hengyang report; section top-1 / R@3": (
            f"{in_report(named):.3f}; {m_named.top1:.3f} / {m_named.recall3:.3f}"
        ),
        f"all in-scope Hengyang dev questions ({len(ins)}): same": (
            f"{in_report(ins):.3f}; {m_all.top1:.3f} / {m_all.recall3:.3f}"
        ),
    }


def library_latency(retriever, path: Path = LIBRARY_QUESTIONS) -> dict:
    """Warm latency of the year-aware questions (each at its own `today`), timelines separately."""
    from datetime import date

    from retrieval.evaluate import load_questions

    questions = load_questions(path)
    times: dict[str, list[float]] = {"all": [], "timeline": []}
    for warm in (True, False):  # a first pass fills the per-year and per-passage caches a server keeps
        for q in questions:
            today = date.fromisoformat(q.today) if q.today else None
            t = time.perf_counter()
            retriever.ask(q.question, today=today)
            ms = (time.perf_counter() - t) * 1000
            if not warm:
                times["all"].append(ms)
                if q.timeline:
                    times["timeline"].append(ms)
    return {
        f"library questions ({len(times['all'])}, {path.name}) warm p50 / p95 ms": (
            f"{statistics.median(times['all']):.1f} / {_percentile(times['all'], 95):.1f}"
        ),
        f"  of which timelines ({len(times['timeline'])}) p50 / p95 ms": (
            f"{statistics.median(times['timeline']):.1f} / {_percentile(times['timeline'], 95):.1f}"
            if times["timeline"] else "-"
        ),
    }


def dialogue_latency(retriever, path: Path = DIALOGUES) -> dict:
    """Warm latency of conversation turns: fresh questions vs follow-ups (understood from the turn
    before), over the dev dialogues played in order."""
    from datetime import date

    from retrieval.evaluate_dialogues import load_dialogues
    from retrieval.followup import remember

    times: dict[str, list[float]] = {"fresh": [], "follow-up": []}
    for warm in (True, False):
        for dialogue in load_dialogues(path):
            history: list = []
            for t in dialogue:
                today = date.fromisoformat(t.today) if t.today else None
                start = time.perf_counter()
                answer, turn = retriever.converse(t.question, history, today=today)
                ms = (time.perf_counter() - start) * 1000
                history = remember(history, turn)
                if not warm:
                    times["fresh" if answer.followup == "fresh" else "follow-up"].append(ms)
    return {
        f"dialogue turns ({path.name}) p50 fresh / follow-up ms ({len(times['fresh'])} / {len(times['follow-up'])})": (
            f"{statistics.median(times['fresh']):.1f} / {statistics.median(times['follow-up']):.1f}"
        ),
    }


def hnsw_recall(retriever, k: int = 10) -> dict:
    """Recall@k of an HNSW graph vs exact search over the same paragraph vectors, and both latencies."""
    from retrieval.dense import DenseIndex
    from retrieval.normalize import normalize_question

    vectors = retriever._index.paragraph_vectors
    exact = DenseIndex.build(vectors)
    approx = DenseIndex.build(vectors, exact_max=0)
    queries = retriever._embedder.encode_queries([normalize_question(q) for q in _questions()])
    hits, t_exact, t_approx = [], [], []
    for q in queries:
        t = time.perf_counter()
        e, _ = exact.search(q, k)
        t_exact.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        a, _ = approx.search(q, k)
        t_approx.append((time.perf_counter() - t) * 1000)
        hits.append(len(set(e) & set(a)) / k)
    return {
        f"HNSW recall@{k} vs exact ({len(vectors)} paragraphs)": f"{np.mean(hits):.4f}",
        "exact / HNSW search p50 ms": f"{statistics.median(t_exact):.3f} / {statistics.median(t_approx):.3f}",
    }


def run_bench(settings: Settings | None = None, full_corpora: bool = False, keep: Path | None = None) -> BenchReport:
    """Seed corpus always; with full_corpora the seed plus ../shared/corpora/* as well. The indexes
    are built from nothing into a temporary home, or into keep/seed and keep/full (replaced), which
    then serve as `--home` for evals over the same corpora."""
    settings = settings or Settings()
    report = BenchReport(load_before=os.getloadavg())
    with contextlib.ExitStack() as stack:
        if keep is None:
            home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="reportqa-bench-")))
        else:
            home = keep.resolve()
            for sub in ("seed", "full"):
                if (home / sub).exists():
                    shutil.rmtree(home / sub)
            home.mkdir(parents=True, exist_ok=True)
        settings.models_dir.mkdir(parents=True, exist_ok=True)
        seed = Settings(corpus_dirs=settings.corpus_dirs, home=home / "seed", model=settings.model)
        (home / "seed").mkdir()
        (home / "seed" / "models").symlink_to(settings.models_dir.resolve(), target_is_directory=True)
        row, _ = bench_corpus("seed", seed)
        report.rows.append(row)
        if full_corpora:
            if not SHARED_CORPORA.is_dir():
                raise InputError(f"{SHARED_CORPORA}: shared corpora not found (needed for --full)")
            dirs = tuple(settings.corpus_dirs) + tuple(sorted(p for p in SHARED_CORPORA.iterdir() if p.is_dir()))
            full = Settings(corpus_dirs=dirs, home=home / "full", model=settings.model)
            (home / "full").mkdir()
            (home / "full" / "models").symlink_to(settings.models_dir.resolve(), target_is_directory=True)
            row, retriever = bench_corpus("full", full, skip_invalid=True)
            row.extra.update(hengyang_at_scale(retriever))
            row.extra.update(library_latency(retriever))
            row.extra.update(dialogue_latency(retriever))
            row.extra.update(hnsw_recall(retriever))
            del retriever
            row.add_ask_seconds, row.remove_ask_seconds = add_and_remove(full)
            report.rows.append(row)
    report.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report.load_after = os.getloadavg()
    return report
