"""Per-file outline counts for the corpora: chapters, sections, deeper units, paragraphs, sentences.

    .venv/bin/python scripts/corpus_outline_stats.py                 # ../shared/corpora + corpus/
    .venv/bin/python scripts/corpus_outline_stats.py DIR [DIR …]     # any corpus directories

Chapters are level-1 sections, sections level 2, deeper level 3+; the preamble ("0") is not counted.
A file that cannot be used (no headings, unreadable) is listed with its error and left out of the
totals. Exit status 0 unless a directory is missing.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from retrieval.corpus import discover, load_report  # noqa: E402
from retrieval.errors import CorpusError  # noqa: E402


def default_dirs() -> list[Path]:
    corpora = REPO.parent / "shared" / "corpora"
    dirs = [REPO / "corpus"]
    if corpora.is_dir():
        dirs += sorted(p for p in corpora.iterdir() if p.is_dir())
    return dirs


def main(argv: list[str]) -> int:
    dirs = [Path(a) for a in argv] or default_dirs()
    totals = [0, 0, 0, 0, 0]
    files = failed = 0
    started = time.perf_counter()
    print(f"{'chap':>5} {'sect':>5} {'deep':>5} {'paras':>6} {'sents':>6}  file")
    for corpus_dir in dirs:
        try:
            metas = discover(corpus_dir)
        except CorpusError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        for meta in metas:
            try:
                report = load_report(corpus_dir, meta)
            except CorpusError as exc:
                failed += 1
                print(f"{'—':>5} {'—':>5} {'—':>5} {'—':>6} {'—':>6}  {corpus_dir.name}/{meta.file}: {exc}")
                continue
            levels = [sec.level for sec in report.walk()]
            paras = list(report.paragraphs())
            row = [
                levels.count(1),
                levels.count(2),
                sum(1 for lv in levels if lv >= 3),
                len(paras),
                sum(len(p.sentences) for p in paras),
            ]
            totals = [a + b for a, b in zip(totals, row, strict=True)]
            files += 1
            print(
                f"{row[0]:>5} {row[1]:>5} {row[2]:>5} {row[3]:>6} {row[4]:>6}  {corpus_dir.name}/{meta.file}"
            )
    elapsed = time.perf_counter() - started
    print(
        f"{totals[0]:>5} {totals[1]:>5} {totals[2]:>5} {totals[3]:>6} {totals[4]:>6}  "
        f"TOTAL: {files} files parsed, {failed} unusable, {elapsed:.1f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
