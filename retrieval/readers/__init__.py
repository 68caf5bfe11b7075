"""Reports as published — PDF, DOCX, DOC/WPS — read into the plain text `retrieval.parse` expects.

    text = read_published(Path("report.pdf"))   # one paragraph per line; CorpusError if unusable

One module per format: `pdf` (+ the pure `pdf_layout`), `docx` (+ the pure `numbering`), `legacy`
(LibreOffice for .doc/.wps); `cleanup` holds the repairs they share. Extraction is slow next to
reading a text file (a PDF takes about a second), so `read_published` keeps the result in a cache
directory keyed by the file's SHA-256 and the reader version: a changed file is read again, an
unchanged one never is.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from pathlib import Path

from retrieval.errors import CorpusError

READER_VERSION = "1"
PUBLISHED_SUFFIXES = (".pdf", ".docx", ".doc", ".wps")
# How a file of each kind starts, and how far in (PDF readers accept a header after 1 KB of junk).
_MAGIC = {".pdf": (b"%PDF-", 1024), ".docx": (b"PK\x03\x04", 0)}
log = logging.getLogger("reportqa.corpus")


def is_published(path: str | Path) -> bool:
    return Path(path).suffix.lower() in PUBLISHED_SUFFIXES


def read_published(
    path: Path, data: bytes, cache_dir: Path | None = None, expected_sha256: str | None = None
) -> str:
    """The text of a PDF/DOCX/DOC/WPS file whose bytes are `data` (cached under cache_dir).

    expected_sha256: the manifest's record of the file as added; a file replaced by hand since is
    still read as it is now (that is what the index will hold), with a warning.
    """
    suffix = path.suffix.lower()
    magic, within = _MAGIC.get(suffix, (b"", 0))
    if magic and magic not in data[: within + len(magic)]:
        kind = suffix[1:].upper()
        raise CorpusError(f"{path}: not a {kind} file (its content does not start like one)")
    digest = hashlib.sha256(data).hexdigest()
    if expected_sha256 and digest != expected_sha256:
        log.warning("%s: file differs from the one added (sha256 in the manifest); reading it as it is now", path)
    cached = _cache_read(cache_dir, digest)
    if cached is not None:
        return cached
    if suffix == ".pdf":
        from retrieval.readers.pdf import read_pdf

        text = read_pdf(path)
    elif suffix == ".docx":
        from retrieval.readers.docx import read_docx

        text = read_docx(path)
    elif suffix in (".doc", ".wps"):
        from retrieval.readers.legacy import read_legacy

        text = read_legacy(path)
    else:  # pragma: no cover - callers check is_published first
        raise CorpusError(f"{path}: not a published-format file")
    _cache_write(cache_dir, digest, text)
    return text


def _cache_file(cache_dir: Path, digest: str) -> Path:
    return cache_dir / f"{digest}.v{READER_VERSION}.txt"


def _cache_read(cache_dir: Path | None, digest: str) -> str | None:
    if cache_dir is None:
        return None
    try:
        return _cache_file(cache_dir, digest).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):  # missing, unreadable or corrupt: read the file again
        return None


def _cache_write(cache_dir: Path | None, digest: str, text: str) -> None:
    """Best effort and atomic: a read-only corpus directory just goes without a cache."""
    if cache_dir is None:
        return
    tmp: str | None = None
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=cache_dir)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, _cache_file(cache_dir, digest))
    except OSError as exc:
        log.debug("no text cache in %s (%s)", cache_dir, exc)
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
