"""Parse time of a 100-page text PDF (issue target: ≤ 5 s on the 2-core dev machine).

    .venv/bin/python scripts/bench_pdf.py [--pages 100] [--runs 3]

Builds the PDF from the committed fixtures (tests/fixtures/published/*.pdf, LibreOffice exports with
CJK fonts): their pages are appended with PDFium until there are --pages of them, then the reader
runs --runs times, with no text cache. Prints pages, characters, seconds per run and the median.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from retrieval.readers.pdf import read_pdf  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures" / "published"


def build(pages: int, out: Path, source_dir: Path = FIXTURES) -> int:
    import pypdfium2 as pdfium

    sources = [p for p in sorted(source_dir.glob("*.pdf")) if "encrypted" not in p.name]
    merged = pdfium.PdfDocument.new()
    while len(merged) < pages:
        for src in sources:
            doc = pdfium.PdfDocument(str(src))
            take = min(len(doc), pages - len(merged))
            merged.import_pages(doc, list(range(take)))
            doc.close()
            if len(merged) >= pages:
                break
    merged.save(str(out))
    n = len(merged)
    merged.close()
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--from", dest="source_dir", type=Path, default=FIXTURES, help="directory of PDFs to use")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pdf = Path(tmp) / "bench.pdf"
        n = build(args.pages, pdf, args.source_dir)
        times = []
        chars = 0
        for _ in range(args.runs):
            t0 = time.perf_counter()
            chars = len(read_pdf(pdf))
            times.append(time.perf_counter() - t0)
        print(f"pdf: {n} pages, {pdf.stat().st_size / 1e6:.1f} MB, {chars} characters of text")
        print("runs (s): " + ", ".join(f"{t:.2f}" for t in times))
        print(f"median: {statistics.median(times):.2f} s ({statistics.median(times) / n * 1000:.0f} ms per page)")


if __name__ == "__main__":
    main()
