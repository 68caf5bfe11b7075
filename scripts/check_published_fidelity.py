"""Fidelity table: each committed PDF/DOCX fixture parsed against the text version of its report.

    .venv/bin/python scripts/check_published_fidelity.py

For every id in tests/fixtures/published/sources.json and each format (pdf, docx, and doc when
LibreOffice is installed): read time, chapters/sections equal (ids, labels, titles), paragraphs
equal / expected / found, agreement, the detected title and signing date, and the first
differences if any. The same comparison (`retrieval.readers.fidelity`) is asserted by the tests.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from retrieval.corpus import meta_from_file  # noqa: E402
from retrieval.document import ReportMeta  # noqa: E402
from retrieval.parse import parse_report  # noqa: E402
from retrieval.readers.fidelity import compare_trees  # noqa: E402
from retrieval.readers.legacy import soffice  # noqa: E402
from retrieval.sources import read_report_text  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures" / "published"


def main() -> None:
    sources = json.loads((FIXTURES / "sources.json").read_text(encoding="utf-8"))
    meta = ReportMeta(report_id="x", title="x", file="x")
    print("| file | format | numbering | read s | title, date | sections equal | paragraphs equal/expected/found "
          "| agreement |")
    print("|---|---|---|---|---|---|---|---|")
    for rid, info in sources.items():
        expected = parse_report(read_report_text(REPO / info["text"]), meta)
        formats = ["pdf", "docx"] + (["doc"] if soffice() and (FIXTURES / f"{rid}.doc").exists() else [])
        for fmt in formats:
            path = FIXTURES / f"{rid}.{fmt}"
            t0 = time.perf_counter()
            text = read_report_text(path)
            took = time.perf_counter() - t0
            got = parse_report(text, meta)
            f = compare_trees(expected, got, expected_title=meta_from_file(REPO / info["text"]).title)
            print(
                f"| {path.name} | {fmt} | {info.get('numbering', '')} | {took:.2f} | "
                f"{'yes' if f.title_equal and f.signed_equal else 'NO'} | "
                f"{'yes' if f.sections_equal else 'NO'} ({f.sections_got}/{f.sections_expected}) | "
                f"{f.paragraphs_equal}/{f.paragraphs_expected}/{f.paragraphs_got} | {f.paragraph_agreement:.3f} |"
            )
            for diff in f.first_differences:
                print(f"|   | {diff} |")


if __name__ == "__main__":
    main()
