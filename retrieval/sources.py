"""Bytes → text at the edge: read a report file and hand `retrieval.parse` clean text.

    text = read_report_text(path)

What it does, in order:
- rejects an empty file, a binary file (NUL bytes, or mostly control characters once decoded) and
  bytes that no text encoding explains, each with a one-line CorpusError naming the file;
- decodes: UTF-8 (with or without BOM) and UTF-16/32 with a BOM directly; anything else through
  charset-normalizer (GBK, GB18030, Big5 …); a file that is UTF-8 except for a few broken bytes is
  reported as such rather than decoded as something else;
- normalises line ends (CRLF, CR → LF) and drops the BOM;
- PDF, DOCX, DOC/WPS (reports as published) go to `retrieval.readers`, which gives the same kind
  of text: one paragraph per line, page furniture removed, auto-numbered labels restored;
- HTML (`.html`/`.htm`, or content that is clearly an HTML page) becomes the text the page shows:
  block elements and <br> end lines, script/style/head are dropped, entities are decoded and runs of
  ordinary whitespace collapse to one space (no-break spaces are kept, as a browser does).
"""

from __future__ import annotations

import codecs
import re
from html.parser import HTMLParser
from pathlib import Path

from retrieval.errors import CorpusError
from retrieval.readers import is_published, read_published

HTML_SUFFIXES = (".html", ".htm")
MAX_BYTES = 50 * 1024 * 1024  # a report is text; anything larger is not one we can use

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: its BOM starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_HTML_SNIFF = re.compile(r"^\s*(?:<!doctype\s+html|<html[\s>])|<(?:html|body|head)[\s>]", re.IGNORECASE)


def read_report_text(
    path: str | Path, cache_dir: Path | None = None, expected_sha256: str | None = None, data: bytes | None = None
) -> str:
    """The text of a report file, decoded and normalised (LF line ends, no BOM, HTML rendered).

    PDF, DOCX, DOC and WPS files are read by `retrieval.readers` (their extracted text is kept in
    cache_dir, keyed by the file's SHA-256, when one is given; expected_sha256 is the manifest's record).
    data: the file's bytes when the caller has read them already (`read_report_bytes`).
    """
    path = Path(path)
    name = str(path)
    if data is None:
        data = read_report_bytes(path)
    if is_published(path):
        if not data.strip():
            raise CorpusError(f"{name}: file is empty")
        return normalize_newlines(read_published(path, data, cache_dir, expected_sha256))
    text = decode_bytes(data, name)
    if path.suffix.lower() in HTML_SUFFIXES or looks_like_html(text):
        text = html_to_text(text)
        if not text.strip():
            raise CorpusError(f"{name}: the HTML page shows no text")
    return text


def read_report_bytes(path: str | Path) -> bytes:
    """A report file's bytes; CorpusError (one line, naming the file) for a directory, a missing,
    unreadable or oversized file."""
    path = Path(path)
    name = str(path)
    try:
        if path.is_dir():
            raise CorpusError(f"{name}: is a directory, not a report file")
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise CorpusError(f"{name}: file is too large for a report ({size} bytes)")
        data = path.read_bytes()
    except FileNotFoundError:
        raise CorpusError(f"{name}: file not found") from None
    except PermissionError:
        raise CorpusError(f"{name}: permission denied") from None
    except OSError as exc:
        raise CorpusError(f"{name}: cannot read file ({exc.strerror or exc})") from None
    return data


def decode_bytes(data: bytes, name: str = "<bytes>") -> str:
    """Decode report bytes to str with normalised line ends; CorpusError (naming `name`) if impossible."""
    if not data.strip():
        raise CorpusError(f"{name}: file is empty")
    text = _decode(data, name)
    text = normalize_newlines(text.lstrip("\ufeff"))
    if not text.strip():
        raise CorpusError(f"{name}: file is empty")
    controls = len(_CONTROL.findall(text))
    if controls > max(8, len(text) // 20):
        raise CorpusError(f"{name}: looks like a binary file, not text ({controls} control characters)")
    return text


def normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _decode(data: bytes, name: str) -> str:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(encoding)
            except UnicodeDecodeError as exc:
                raise CorpusError(
                    f"{name}: invalid {encoding.upper()} byte at offset {exc.start + len(bom)}"
                ) from None
    if b"\x00" in data:
        raise CorpusError(f"{name}: looks like a binary file, not text (contains NUL bytes)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        first_bad = exc.start
    if _mostly_utf8(data):
        raise CorpusError(f"{name}: invalid UTF-8 byte at offset {first_bad} (the file is damaged)")

    from charset_normalizer import from_bytes  # only non-UTF-8 files pay for the import

    best = from_bytes(data).best()
    if best is None or best.encoding is None:
        raise CorpusError(f"{name}: unknown text encoding (not UTF-8, GBK/GB18030 or another known one)")
    return str(best)


def _mostly_utf8(data: bytes) -> bool:
    """True when the bytes are UTF-8 apart from a few broken sequences (a damaged UTF-8 file)."""
    decoded = data.decode("utf-8", errors="replace")
    bad = decoded.count("\ufffd") - data.decode("utf-8", errors="ignore").count("\ufffd")
    good = sum(1 for ch in decoded if ord(ch) > 0x7F and ch != "\ufffd")
    return good >= 20 and good >= 10 * bad


# ------------------------------------------------------------------------------------------- HTML


def looks_like_html(text: str) -> bool:
    """Clearly an HTML page (a doctype, or an <html>/<head>/<body> tag near the start)."""
    return bool(_HTML_SNIFF.search(text[:4096]))


_BLOCK_TAGS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "body",
        "center",
        "dd",
        "details",
        "dialog",
        "dir",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hgroup",
        "hr",
        "html",
        "li",
        "main",
        "menu",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "summary",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "title",
        "tr",
        "ul",
    ]
)
_SKIP_TAGS = frozenset(["script", "style", "head", "noscript", "template", "svg", "math", "iframe", "object"])
_VOID_TAGS = frozenset(
    [
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
    ]
)
_COLLAPSE = re.compile(r"[ \t\n\r\f\v]+")


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.current: list[str] = []
        self.skip_depth = 0
        self.pre_depth = 0

    def _break(self) -> None:
        line = "".join(self.current)
        if self.pre_depth:
            self.lines.extend(line.split("\n"))
        else:
            self.lines.append(line.strip(" "))
        self.current = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            if tag not in _VOID_TAGS:
                self.skip_depth += 1
            return
        if self.skip_depth:
            return
        if tag == "br":
            self._break()
        elif tag in _BLOCK_TAGS:
            self._break()
            if tag == "pre":
                self.pre_depth += 1
        elif tag in ("td", "th"):
            self.current.append("\t")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if not self.skip_depth and (tag == "br" or tag in _BLOCK_TAGS):
            self._break()

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self.skip_depth = max(0, self.skip_depth - 1)
            return
        if self.skip_depth:
            return
        if tag in _BLOCK_TAGS:
            self._break()
            if tag == "pre":
                self.pre_depth = max(0, self.pre_depth - 1)

    def handle_data(self, data: str) -> None:
        if self.skip_depth:
            return
        if self.pre_depth:
            self.current.append(data)
            return
        data = _COLLAPSE.sub(" ", data)
        if data.startswith(" ") and (not self.current or self.current[-1].endswith((" ", "\t"))):
            data = data[1:]
        if data:
            self.current.append(data)


def html_to_text(html: str) -> str:
    """The text an HTML page shows, one block per line (blank lines between blocks removed)."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    parser._break()
    lines: list[str] = []
    for line in parser.lines:
        if line.strip(" "):
            lines.append(line)
    return "\n".join(lines) + "\n" if lines else ""
