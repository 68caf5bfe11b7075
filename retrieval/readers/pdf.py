"""PDF with a text layer → report text (I/O edge; the layout rules are in `pdf_layout`).

    text = read_pdf(Path("report.pdf"))

pdfplumber (on pdfminer.six) reads each glyph with its box and font; when its text layer decodes to
garbage — (cid:N), U+FFFD, private-use code points — pypdfium2 (PDFium, with its own CMaps) reads
the same pages again. A scanned PDF, an encrypted or corrupt file, and a text layer neither reader
can decode each raise a one-line CorpusError that says what to do.
"""

from __future__ import annotations

import logging
from pathlib import Path

from retrieval.errors import CorpusError
from retrieval.readers.cleanup import fix_codepoints, garbage_share
from retrieval.readers.pdf_layout import Glyph, layout_paragraphs

log = logging.getLogger("reportqa.corpus")
GARBAGE_LIMIT = 0.05  # above this share of undecodable glyphs a text layer is not usable
_SCANNED_MIN_CHARS = 10  # a page with an image and fewer characters than this was scanned


def read_pdf(path: Path) -> str:
    """The paragraphs of a text PDF, one per line."""
    name = str(path)
    _check_complete(path, name)
    pages, heights, outline, images = _read_plumber(path, name)
    _check_scanned(pages, images, name)
    share = _garbage(pages)
    if share > GARBAGE_LIMIT:
        log.info("%s: text layer garbled for pdfminer; trying PDFium", name)
        first_count = _visible(pages)
        pages, heights = _read_pdfium(path, name)
        if _garbage(pages) <= GARBAGE_LIMIT and _visible(pages) >= 0.5 * first_count:
            share = 0.0
        if share > GARBAGE_LIMIT:
            raise CorpusError(
                f"{name}: text layer unusable ({share:.0%} of the characters do not decode: "
                "(cid:…), U+FFFD or private-use glyphs); export the PDF again with embedded Unicode fonts or OCR it"
            )
    paragraphs = [fix_codepoints(p) for p in layout_paragraphs(pages, heights, outline)]
    text = "\n".join(p for p in paragraphs if p.strip())
    if not text.strip():
        raise CorpusError(f"{name}: the PDF has no text")
    return text + "\n"


def _check_complete(path: Path, name: str) -> None:
    """A PDF ends with %%EOF; pdfminer would read what is left of a truncated one without a word."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - 8192))
            tail = fh.read()
    except OSError as exc:
        raise CorpusError(f"{name}: cannot read file ({exc.strerror or exc})") from None
    if b"%%EOF" not in tail:
        raise CorpusError(f"{name}: the PDF is truncated (it has no end-of-file marker): get the complete file")


def _visible(pages: list[list[Glyph]]) -> int:
    return sum(1 for page in pages for g in page if not g.text.isspace())


def _garbage(pages: list[list[Glyph]]) -> float:
    return garbage_share("".join(g.text for page in pages for g in page))


def _check_scanned(pages: list[list[Glyph]], images: list[bool], name: str) -> None:
    scanned = [
        i + 1
        for i, (glyphs, has_image) in enumerate(zip(pages, images, strict=True))
        if has_image and sum(1 for g in glyphs if not g.text.isspace()) < _SCANNED_MIN_CHARS
    ]
    if scanned:
        raise CorpusError(f"{name}: no text layer on {_page_ranges(scanned)} (a scan): OCR it first")


def _page_ranges(pages: list[int]) -> str:
    """[1,2,3,7] → 'pages 1–3, 7'."""
    runs: list[list[int]] = []
    for p in pages:
        if runs and p == runs[-1][-1] + 1:
            runs[-1].append(p)
        else:
            runs.append([p])
    parts = [f"{r[0]}–{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs]
    word = "page" if len(pages) == 1 else "pages"
    return f"{word} {', '.join(parts)}"


def _read_plumber(path: Path, name: str) -> tuple[list[list[Glyph]], list[float], list[str], list[bool]]:
    import pdfplumber
    from pdfminer.pdfdocument import PDFEncryptionError, PDFPasswordIncorrect
    from pdfplumber.utils.exceptions import PdfminerException

    pages: list[list[Glyph]] = []
    heights: list[float] = []
    images: list[bool] = []
    outline: list[str] = []
    try:
        with pdfplumber.open(path) as pdf:
            outline = _outline(pdf)
            for page in pdf.pages:
                heights.append(float(page.height))
                images.append(bool(page.images))
                pages.append([
                    Glyph(
                        text=c.get("text") or "",
                        x0=float(c["x0"]),
                        x1=float(c["x1"]),
                        top=float(c["top"]),
                        bottom=float(c["bottom"]),
                        size=float(c.get("size") or 0.0),
                        font=_font_name(c.get("fontname")),
                    )
                    for c in page.chars
                    if c.get("upright", True)
                ])
                page.close()  # drop pdfminer's layout objects as we go: memory stays flat
    except PdfminerException as exc:
        cause = exc.args[0] if exc.args else exc
        if isinstance(cause, PDFPasswordIncorrect | PDFEncryptionError) or "password" in str(cause).lower():
            raise CorpusError(f"{name}: the PDF is encrypted (password-protected); save an unprotected copy") from None
        raise CorpusError(f"{name}: not a readable PDF (damaged or truncated: {_short(cause)})") from None
    except (PDFPasswordIncorrect, PDFEncryptionError):
        raise CorpusError(f"{name}: the PDF is encrypted (password-protected); save an unprotected copy") from None
    except CorpusError:
        raise
    except Exception as exc:  # pdfminer raises many kinds on a damaged file
        raise CorpusError(f"{name}: not a readable PDF (damaged or truncated: {_short(exc)})") from None
    if not pages:
        raise CorpusError(f"{name}: the PDF has no pages")
    return pages, heights, outline, images


def _outline(pdf) -> list[str]:
    try:
        return [str(entry[1]) for entry in pdf.doc.get_outlines() if entry[1]]
    except Exception:  # no outline, or one pdfminer cannot follow
        return []


def _font_name(raw) -> str:
    if isinstance(raw, bytes):  # font names written as raw GBK bytes (宋体)
        for enc in ("utf-8", "gb18030"):
            try:
                return raw.decode(enc)
            except UnicodeDecodeError:
                continue
        return raw.decode("latin-1")
    return str(raw or "")


def _read_pdfium(path: Path, name: str) -> tuple[list[list[Glyph]], list[float]]:
    """The same glyphs through PDFium (its own CMaps), for a text layer pdfminer cannot decode."""
    import ctypes

    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    try:
        pdf = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        raise CorpusError(f"{name}: not a readable PDF ({_short(exc)})") from None
    pages: list[list[Glyph]] = []
    heights: list[float] = []
    buf = ctypes.create_string_buffer(256)
    flags = ctypes.c_int()
    try:
        for page in pdf:
            height = float(page.get_height())
            heights.append(height)
            tp = page.get_textpage()
            glyphs = []
            for i in range(tp.count_chars()):
                text = tp.get_text_range(i, 1)
                if not text or text in "\r\n":
                    continue
                left, bottom, right, top = tp.get_charbox(i)
                size = float(pdfium_c.FPDFText_GetFontSize(tp.raw, i))
                n = pdfium_c.FPDFText_GetFontInfo(tp.raw, i, buf, len(buf), ctypes.byref(flags))
                font = buf.raw[: max(0, n - 1)].decode("utf-8", "replace") if n else ""
                glyphs.append(Glyph(text, left, right, height - top, height - bottom, size, font))
            pages.append(glyphs)
            tp.close()
            page.close()
    finally:
        pdf.close()
    return pages, heights


def _short(exc: object) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:120]
