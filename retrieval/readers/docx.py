"""DOCX → report text (I/O edge): body paragraphs and tables in document order, one per line.

python-docx reads the body; Word's auto-numbered labels (一、 （一）), which are not in the text
runs, are put back in front of their paragraphs from numbering.xml (`readers.numbering`), so the
parser sees the structure the author sees. Typed labels are left as they are. Tables become one
line per row, cells separated by two spaces. Headers, footers and comments are not report text.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from retrieval.errors import CorpusError
from retrieval.readers.cleanup import HEADING_START, fix_codepoints
from retrieval.readers.numbering import Numbering


def read_docx(path: Path) -> str:
    """The paragraphs of a DOCX file, labels of auto-numbered ones included."""
    name = str(path)
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise CorpusError(f"{name}: not a readable DOCX file (damaged or truncated: {_short(exc)})") from None
    if "[Content_Types].xml" not in names or not any(n.endswith("document.xml") for n in names):
        raise CorpusError(f"{name}: not a DOCX file (no Word document inside the zip)")
    try:
        import docx
        from docx.opc.exceptions import PackageNotFoundError

        try:
            document = docx.Document(str(path))
        except PackageNotFoundError:
            raise CorpusError(f"{name}: not a DOCX file (no Word document inside)") from None
    except CorpusError:
        raise
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise CorpusError(f"{name}: not a readable DOCX file (damaged or truncated: {_short(exc)})") from None
    except Exception as exc:  # lxml and the zip layer raise many kinds on a damaged file
        raise CorpusError(f"{name}: not a readable DOCX file ({_short(exc)})") from None

    try:
        lines = _body_lines(document)
    except (ValueError, KeyError, AttributeError, TypeError, IndexError) as exc:  # malformed XML inside
        raise CorpusError(f"{name}: not a readable DOCX file (malformed document: {_short(exc)})") from None
    if not lines:
        raise CorpusError(f"{name}: the DOCX file has no text")
    return "\n".join(lines) + "\n"


def _body_lines(document) -> list[str]:
    numbering = Numbering(_numbering_root(document), _styles_root(document))
    lines: list[str] = []
    for block in document.iter_inner_content():
        if hasattr(block, "rows"):
            lines.extend(_table_rows(block))
            continue
        style_id = block._p.style  # the paragraph's own style id (None: the default style)
        text = _paragraph_text(block)
        label = numbering.label(block._p, style_id)
        if not text.strip() and not label:
            continue
        if label and not HEADING_START.match(text.lstrip()):
            text = label + text.lstrip()
        lines.extend(fix_codepoints(part) for part in text.split("\n") if part.strip())
    return lines


def _paragraph_text(paragraph) -> str:
    # paragraph.text renders <w:br/> as "\n" and <w:tab/> as "\t"; a hard break inside Chinese text
    # continues the sentence (titles broken over two lines), so only keep it between other text.
    text = paragraph.text.replace("\t", " ")
    return re.sub(r"(?<=[\u3400-\u9fff，、])\n(?=[\u3400-\u9fff])", "", text)


def _table_rows(table) -> list[str]:
    rows = []
    for row in table.rows:
        cells: list[str] = []
        for cell in row.cells:
            text = " ".join(cell.text.split())
            if text and (not cells or cells[-1] != text):  # a merged cell repeats its text
                cells.append(text)
        if cells:
            rows.append(fix_codepoints("  ".join(cells)))
    return rows


def _numbering_root(document):
    try:
        return document.part.numbering_part.element
    except (KeyError, NotImplementedError, AttributeError):
        return None


def _styles_root(document):
    try:
        return document.part.styles.element
    except (KeyError, NotImplementedError, AttributeError):
        return None


def _short(exc: object) -> str:
    return (" ".join(str(exc).split()) or type(exc).__name__)[:120]

