"""Parsed reports kept on disk, so a cold start reads 150 reports instead of parsing them (I/O edge).

    key = parsed_key(meta, data)              # data: the report file's bytes as read now
    report = read_parsed(cache_dir, key, meta) or parse_it_and(write_parsed(cache_dir, key, report))

Parsing the 150-report library takes ~0.5 s; unpickling the same reports ~0.15 s. An entry is keyed
by everything the parsed report depends on: the file's bytes (SHA-256), its manifest entry, and the
source of the code that turns bytes into a `Report` (document model, decoding, readers, parser) — so a
changed file, manifest entry or parser never meets an old entry, with no version to remember to bump.
Each entry carries the SHA-256 of its payload and is ignored (and re-parsed) if it does not match; a
cache that cannot be written (read-only home) only costs the time. A text that fails to parse is
remembered too (its error message), so an invalid report left in a corpus costs nothing at the next
start. Entries unused for `STALE_DAYS` are pruned.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from retrieval.document import Paragraph, Report, ReportMeta, Section, Sentence
from retrieval.errors import CorpusError
from retrieval.index_store import atomic_write_bytes, seal, unseal

STALE_DAYS = 30
_PACKAGE = Path(__file__).resolve().parent
# The modules whose code decides what a report file parses into.
_PRODUCERS = ("document.py", "parse.py", "sources.py", "titles.py", "readers", "parse_cache.py")  # + how it is stored


@lru_cache(maxsize=1)
def producer_code_hash() -> str:
    """SHA-256 over the source of every module between a file's bytes and its `Report`."""
    h = hashlib.sha256()
    for name in _PRODUCERS:
        path = _PACKAGE / name
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            h.update(file.relative_to(_PACKAGE).as_posix().encode() + b"\x00")
            h.update(file.read_bytes())
    return h.hexdigest()


def parsed_key(meta: ReportMeta, data: bytes) -> str:
    """The cache key of a report file with these bytes and this manifest entry."""
    h = hashlib.sha256(producer_code_hash().encode())
    h.update(json.dumps(asdict(meta), ensure_ascii=False, sort_keys=True).encode("utf-8"))
    h.update(hashlib.sha256(data).digest())
    return h.hexdigest()[:40]


def _entry(cache_dir: Path, key: str) -> Path:
    return cache_dir / f"{key}.pickle"


@dataclass(frozen=True)
class _Invalid:
    """A cached failure: these bytes, this entry and this parser code gave this error."""

    message: str


def read_parsed(cache_dir: Path, key: str, meta: ReportMeta) -> Report | None:
    """The cached report, or None when there is none or it cannot be trusted.

    Raises CorpusError (the message of the first attempt) for a file that failed to parse before with
    the same key: an invalid report left in a corpus is not parsed again on every cold start.
    """
    path = _entry(cache_dir, key)
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    payload = unseal(raw)
    if payload is None:
        return None
    try:
        stored = pickle.loads(payload)  # our own file, verified above: not input from anyone else
        if isinstance(stored, _Invalid):
            _touch_if_old(path)
            raise CorpusError(stored.message)
        report = unpack(stored)
    except CorpusError:
        raise
    except Exception:  # noqa: BLE001 - an unreadable entry is a cache miss
        return None
    if report.meta != meta:
        return None
    _touch_if_old(path)
    return report


def write_parsed(cache_dir: Path, key: str, report: Report) -> None:
    """Store a parsed report (best effort: a cache that cannot be written costs only time)."""
    payload = pickle.dumps(pack(report), protocol=pickle.HIGHEST_PROTOCOL)
    with contextlib.suppress(OSError):
        atomic_write_bytes(_entry(cache_dir, key), seal(payload))


def write_invalid(cache_dir: Path, key: str, message: str) -> None:
    """Remember that this file does not parse (best effort, as `write_parsed`)."""
    payload = pickle.dumps(_Invalid(message), protocol=pickle.HIGHEST_PROTOCOL)
    with contextlib.suppress(OSError):
        atomic_write_bytes(_entry(cache_dir, key), seal(payload))


def _touch_if_old(path: Path) -> None:
    """Mark an entry used (at most once a day, so reads rarely write)."""
    with contextlib.suppress(OSError):
        if time.time() - path.stat().st_mtime > 86400:
            os.utime(path)


def prune_parsed(cache_dir: Path) -> None:
    """Delete entries unused for STALE_DAYS (after a load that wrote new ones)."""
    cutoff = time.time() - STALE_DAYS * 86400
    for path in cache_dir.glob("*.pickle"):
        with contextlib.suppress(OSError):
            if path.stat().st_mtime < cutoff:
                path.unlink()


# --- stored form ---------------------------------------------------------------------------------
# Paragraph and sentence texts are slices of the report text: stored as offsets, not three copies of
# the text (26 MB → 9 MB of entries for the 150-report library; unpacking costs less than unpickling
# the dataclasses did). A text that is not its slice (none so far) is stored as it is.


def _slice_or_text(text: str, whole: str, start: int, end: int) -> str | None:
    return None if whole[start:end] == text else text


def _pack_section(sec: Section, whole: str) -> tuple:
    paragraphs = [
        (p.start, p.end, _slice_or_text(p.text, whole, p.start, p.end), p.section_id, p.index,
         [(s.start, s.end, _slice_or_text(s.text, whole, s.start, s.end)) for s in p.sentences])
        for p in sec.paragraphs
    ]
    children = [_pack_section(c, whole) for c in sec.children]
    return (sec.section_id, sec.label, sec.title, sec.level, sec.start, sec.end, paragraphs, children)


def _unpack_section(packed: tuple, whole: str) -> Section:
    section_id, label, title, level, start, end, paragraphs, children = packed
    return Section(
        section_id, label, title, level, start, end,
        [
            Paragraph(whole[a:b] if text is None else text, a, b,
                      [Sentence(whole[s:e] if t is None else t, s, e) for s, e, t in sentences], sid, index)
            for a, b, text, sid, index, sentences in paragraphs
        ],
        [_unpack_section(c, whole) for c in children],
    )


def pack(report: Report) -> tuple:
    """The report as plain tuples (see above); `unpack` gives an equal report back."""
    return (report.meta, report.text, report.signed_date, report.parsed_title,
            [_pack_section(s, report.text) for s in report.sections])


def unpack(packed: tuple) -> Report:
    meta, text, signed_date, parsed_title, sections = packed
    return Report(meta, text, [_unpack_section(s, text) for s in sections], signed_date, parsed_title)
