"""The corpus: directories of report files, each optionally with a `reports.toml` manifest (I/O edge).

    metas = discover(Path("corpus"))            # the manifest's entries, or one per report file
    reports = load_corpus([Path("corpus")])     # every report parsed and validated
    meta = add_report(Path("corpus"), Path("new.txt"), title="…", date="2020-03-17")
    remove_report(Path("corpus"), meta.report_id)

A directory with `reports.toml` holds exactly the reports listed there (see corpus/reports.toml for
the fields). A directory without one holds every `*.txt`/`*.md`/`*.html`/`*.htm` file in it, with
metadata derived from the file: id = file stem, title = the `# title:` comment if any else the stem
without its trailing `_YYYY`/`_YYYY年`, year from that suffix (else the first 4-digit year in the
name), region = the first place name ending in 省/市/区/县 in the title.

Every problem is a CorpusError whose one-line message names the manifest or file and the entry.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date as _date
from datetime import datetime as _datetime
from pathlib import Path
from typing import Any

from retrieval.document import Report, ReportMeta
from retrieval.errors import CorpusError
from retrieval.readers import PUBLISHED_SUFFIXES, is_published
from retrieval.sources import read_report_bytes, read_report_text
from retrieval.titles import describe_title, title_from_filename, title_region

MANIFEST = "reports.toml"
REPORT_SUFFIXES = (".txt", ".md", ".html", ".htm", *PUBLISHED_SUFFIXES)
TEXT_CACHE = ".reportqa-cache"  # text extracted from published-format files, by SHA-256 (retrieval.readers)
NO_HEADINGS_HINT = "expected 一、/(一)/第X章/第X条/# …"

_FIELDS = (
    "id",
    "file",
    "title",
    "issuer",
    "publisher",
    "signed",
    "published",
    "year",
    "region",
    "kind",
    "source_url",
    "sha256",
)
_REQUIRED = ("id", "file", "title")
_DATE_FIELDS = ("signed", "published")
_ID_RE = re.compile(r"^[^\s/\\]{1,200}$")
_DEFAULT_HEADER = (
    "# The report corpus. One [[report]] table per report; `file` is relative to this directory.\n"
    "# Adding a report = dropping its file here + adding an entry (or `reportqa reports add FILE`).\n"
    "# Dates are ISO (YYYY-MM-DD). `year` is the year in the title; `region` the place it is about; `kind`\n"
    "# 政府工作报告, 法治政府建设情况报告, 条例 … (detected from the title when left out).\n"
)


# ------------------------------------------------------------------------------------- manifest


def manifest_path(corpus_dir: Path) -> Path:
    return Path(corpus_dir) / MANIFEST


def load_manifest(corpus_dir: str | Path) -> list[ReportMeta]:
    """The entries of `corpus_dir/reports.toml`, checked; CorpusError naming manifest and entry."""
    corpus_dir = Path(corpus_dir)
    path = manifest_path(corpus_dir)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CorpusError(f"{path}: manifest not found") from None
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read manifest ({exc.strerror or exc})") from None
    try:
        data = tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise CorpusError(f"{path}: manifest is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise CorpusError(f"{path}: malformed TOML ({exc})") from None
    unknown = sorted(set(data) - {"report"})
    if unknown:
        raise CorpusError(
            f"{path}: unknown top-level key(s) {', '.join(unknown)} (expected [[report]] tables)"
        )
    entries = data.get("report", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise CorpusError(f"{path}: `report` must be an array of tables ([[report]])")
    metas: list[ReportMeta] = []
    seen: dict[str, int] = {}
    for n, entry in enumerate(entries, 1):
        meta = _meta_from_entry(entry, path, n)
        if meta.report_id in seen:
            raise CorpusError(
                f"{path}: duplicate report id {meta.report_id!r} (entries {seen[meta.report_id]} and {n})"
            )
        seen[meta.report_id] = n
        file = corpus_dir / meta.file
        if not file.is_file():
            raise CorpusError(
                f"{path}: entry {meta.report_id!r}: file {meta.file!r} does not exist in {corpus_dir}"
            )
        metas.append(meta)
    return metas


def _meta_from_entry(entry: dict[str, Any], path: Path, n: int) -> ReportMeta:
    name = f"entry {entry['id']!r}" if isinstance(entry.get("id"), str) and entry.get("id") else f"entry {n}"
    unknown = sorted(set(entry) - set(_FIELDS))
    if unknown:
        raise CorpusError(
            f"{path}: {name}: unknown field(s) {', '.join(unknown)} (known: {', '.join(_FIELDS)})"
        )
    for key in _REQUIRED:
        value = entry.get(key)
        if not isinstance(value, str) or not value.strip():
            raise CorpusError(f"{path}: {name}: missing required field {key!r}")
    if not _ID_RE.match(entry["id"]):
        raise CorpusError(f"{path}: {name}: id must be one word without spaces or slashes")
    file = entry["file"]
    if Path(file).is_absolute() or ".." in Path(file).parts:
        raise CorpusError(f"{path}: {name}: file must be a path inside the corpus directory, got {file!r}")
    values: dict[str, Any] = {}
    sha = entry.get("sha256")
    if sha is not None and (not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{64}", sha)):
        raise CorpusError(f"{path}: {name}: sha256 must be 64 lowercase hex digits")
    for key in ("issuer", "publisher", "region", "kind", "source_url", "sha256"):
        value = entry.get(key)
        if value is not None and not isinstance(value, str):
            raise CorpusError(f"{path}: {name}: {key} must be a string")
        values[key] = value.strip() or None if isinstance(value, str) else None
    for key in _DATE_FIELDS:
        value = entry.get(key)
        if isinstance(value, _datetime):
            value = value.date()
        if isinstance(value, _date):
            value = value.isoformat()
        if value is not None:
            iso = _iso_date(value) if isinstance(value, str) else None
            if iso is None:
                raise CorpusError(f"{path}: {name}: {key} must be an ISO date (YYYY-MM-DD), got {value!r}")
            value = iso
        values[key] = value
    year = entry.get("year")
    if year is not None and (isinstance(year, bool) or not isinstance(year, int) or not 1000 <= year <= 2999):
        raise CorpusError(f"{path}: {name}: year must be a 4-digit integer, got {year!r}")
    title = entry["title"].strip()
    facts = describe_title(title)  # what an entry leaves out, its title says
    values["kind"] = values["kind"] or facts.kind
    values["region"] = values["region"] or facts.region
    return ReportMeta(
        report_id=entry["id"].strip(),
        title=title,
        file=file,
        year=year if year is not None else facts.year,
        **values,
    )


def _iso_date(value: str) -> str | None:
    value = value.strip()
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return None
    try:
        return _date.fromisoformat(value).isoformat()
    except ValueError:
        return None


# ------------------------------------------------------------------------------------- discover


def discover(corpus_dir: str | Path) -> list[ReportMeta]:
    """The reports of a corpus directory: its manifest's entries, or one per report file in it."""
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise CorpusError(f"{corpus_dir}: corpus directory not found")
    if manifest_path(corpus_dir).exists():
        return load_manifest(corpus_dir)
    return [meta_from_file(path, corpus_dir) for path in report_files(corpus_dir)]


def report_files(corpus_dir: Path) -> list[Path]:
    return sorted(
        p for p in Path(corpus_dir).iterdir() if p.is_file() and p.suffix.lower() in REPORT_SUFFIXES
    )


def meta_from_file(path: Path, corpus_dir: Path | None = None) -> ReportMeta:
    """Metadata derived from a report file: title from its `# title:` comment, else the file name
    without the `_YEAR` suffix; year, region, kind and a date from that title (`retrieval.titles`)."""
    stem = path.stem
    title = _comment_title(path) or title_from_filename(stem)
    facts = describe_title(title, stem)
    file = path.name if corpus_dir is None else str(path.relative_to(corpus_dir))
    return ReportMeta(
        report_id=stem,
        title=title,
        file=file,
        year=facts.year,
        region=facts.region,
        kind=facts.kind,
        published=facts.date,
    )


def _comment_title(path: Path) -> str | None:
    try:
        with path.open("rb") as fh:
            head = fh.read(4096)
    except OSError:
        return None
    text = head.decode("utf-8", errors="ignore").lstrip("\ufeff")
    for line in text.splitlines()[:10]:
        m = re.match(r"^#[ \t]*title[ \t]*:[ \t]*(.+?)\s*$", line)
        if m:
            return m.group(1)
    return None


def region_of(title: str) -> str | None:
    """The place a title is about (the most specific: 深圳市龙华区… → 龙华区; 国务院), else None."""
    return title_region(title)


def corpus_fingerprint(dirs: Sequence[str | Path]) -> tuple:
    """A cheap signature of the corpus on disk (stat only): manifests and report files, size and mtime.

    A running bot compares it every few seconds to notice a corpus changed underneath it.
    """
    sig: list[tuple] = []
    for corpus_dir in dirs:
        corpus_dir = Path(corpus_dir)
        try:
            paths = sorted(p for p in corpus_dir.iterdir() if p.is_file())
        except OSError:
            sig.append((str(corpus_dir), "missing"))
            continue
        for p in paths:
            try:
                st = p.stat()
            except OSError:
                continue
            sig.append((str(p), st.st_size, st.st_mtime_ns))
    return tuple(sig)


# ---------------------------------------------------------------------------------------- load


def content_hash(path: str | Path) -> str:
    """SHA-256 (hex) of a file's bytes."""
    h = hashlib.sha256()
    try:
        with Path(path).open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    return h.hexdigest()


def load_report(corpus_dir: str | Path, meta: ReportMeta, parsed_cache: Path | None = None) -> Report:
    """Read, parse and validate one report of a corpus directory.

    parsed_cache: a directory of parsed reports (`retrieval.parse_cache`); a report whose bytes,
    manifest entry and parser code are unchanged is taken from there instead of being parsed again.
    """
    from retrieval import parse_cache

    path = Path(corpus_dir) / meta.file
    data = read_report_bytes(path)
    key = None
    # A published file replaced by hand since it was added is read afresh (and warned about) each time.
    if meta.sha256 is None or meta.sha256 == hashlib.sha256(data).hexdigest():
        key = parse_cache.parsed_key(meta, data)
        cached = parse_cache.read_parsed(parsed_cache, key, meta) if parsed_cache is not None else None
        if cached is not None:
            cached.source_key = key
            return cached
    # Imported only on a cache miss: compiling its 32 patterns would cost every cold start ~20 ms.
    from retrieval.parse import parse_report

    text = read_report_text(path, cache_dir=Path(corpus_dir) / TEXT_CACHE, expected_sha256=meta.sha256, data=data)
    try:  # a text that does not parse is remembered (reading errors may depend on the machine: not cached)
        report = parse_report(text, meta)
        validate_report(report, path)
    except CorpusError as exc:
        if key is not None and parsed_cache is not None:
            parse_cache.write_invalid(parsed_cache, key, str(exc))
        raise
    report.source_key = key
    if key is not None and parsed_cache is not None:
        parse_cache.write_parsed(parsed_cache, key, report)
    return report


def validate_report(report: Report, path: str | Path) -> None:
    """CorpusError when a parsed report cannot be used: no headings at all."""
    if not any(sec.level >= 1 for sec in report.sections):
        raise CorpusError(f"{path}: no headings found ({NO_HEADINGS_HINT})")


def load_corpus(
    dirs: Sequence[str | Path], *, skip_invalid: bool = False, parsed_cache: Path | None = None
) -> list[Report]:
    """Every report of every directory, parsed and validated; ids must be unique across directories.

    skip_invalid: leave out (with a warning in the `reportqa.corpus` log) report files that cannot be
    used — for a directory of files collected elsewhere, e.g. a saved web page without the report.
    Problems with the manifests themselves and duplicate ids are always errors.
    parsed_cache: see `load_report`.
    """
    import gc
    import logging

    log = logging.getLogger("reportqa.corpus")
    # Parsing or unpickling builds ~100k small objects at once; collecting while they are being made
    # finds nothing to free and costs a third of the load.
    paused = gc.isenabled()
    gc.disable()
    try:
        return _load_all(dirs, skip_invalid, parsed_cache, log)
    finally:
        if paused:
            gc.enable()


def _load_all(dirs, skip_invalid: bool, parsed_cache: Path | None, log) -> list[Report]:
    reports: list[Report] = []
    where: dict[str, Path] = {}
    for corpus_dir in dirs:
        corpus_dir = Path(corpus_dir)
        for meta in discover(corpus_dir):
            if meta.report_id in where:
                raise CorpusError(
                    f"duplicate report id {meta.report_id!r} in {where[meta.report_id]} and {corpus_dir}"
                )
            try:
                report = load_report(corpus_dir, meta, parsed_cache)
            except CorpusError as exc:
                if not skip_invalid:
                    raise
                log.warning("skipped: %s", exc)
                continue
            where[meta.report_id] = corpus_dir
            reports.append(report)
    if parsed_cache is not None:
        from retrieval.parse_cache import prune_parsed

        prune_parsed(parsed_cache)
    return reports


# ------------------------------------------------------------------------------- add and remove


@dataclass(frozen=True)
class AddResult:
    """What `add_reports` did: the reports added (in order) and the files it skipped, with why."""

    added: list[ReportMeta]
    skipped: list[tuple[Path, str]]


def expand_report_files(paths: Sequence[str | Path]) -> list[Path]:
    """FILE and DIR arguments → report files (a directory gives its *.txt/*.md/*.html/*.htm, sorted)."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = report_files(path)
            if not found:
                raise CorpusError(f"{path}: no report files in this directory (expected {', '.join(REPORT_SUFFIXES)})")
            out.extend(found)
        else:
            out.append(path)
    return out


def add_report(corpus_dir: str | Path, file: str | Path, **overrides: Any) -> ReportMeta:
    """Add one report (see `add_reports`); CorpusError when it cannot be added."""
    result = add_reports(corpus_dir, [Path(file)], strict=True, **overrides)
    return result.added[0]


def add_reports(
    corpus_dir: str | Path,
    files: Sequence[str | Path],
    *,
    title: str | None = None,
    date: str | None = None,
    issuer: str | None = None,
    report_id: str | None = None,
    publisher: str | None = None,
    published: str | None = None,
    year: int | None = None,
    region: str | None = None,
    kind: str | None = None,
    source_url: str | None = None,
    strict: bool = False,
    on_file: Callable[[Path], None] | None = None,
) -> AddResult:
    """Validate each file by parsing it, copy it into the corpus directory and list it in the manifest.

    Metadata is detected with no flags: title from the text's title line (else its `# title:`
    comment, else the file name without `_YEAR`), year, region and kind from that title (the file
    name fills what the title lacks), signed date from the signature block or a date in the title.
    Keyword arguments override detection; `title`/`report_id` only make sense for one file.

    A file that cannot be added is skipped with its reason (strict: the first such file raises and
    nothing is added). The manifest is written once, atomically (temp file + os.replace), after every
    file was checked: on any failure it is left byte-identical and copied files are removed again. A
    directory without a manifest gets one listing its existing files first, so adding hides nothing.
    """
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise CorpusError(f"{corpus_dir}: corpus directory not found")
    paths = [Path(f) for f in files]
    if len(paths) > 1 and (title or report_id):
        raise CorpusError("--title and --id name one report; give one file with them")
    for key, value in (("date", date), ("published", published)):
        if value is not None and _iso_date(value) is None:
            raise CorpusError(f"--{key} must be an ISO date (YYYY-MM-DD), got {value!r}")
    mpath = manifest_path(corpus_dir)
    existing = discover(corpus_dir)
    taken_ids = {m.report_id for m in existing}
    taken_files = {m.file: m.report_id for m in existing}

    added: list[tuple[ReportMeta, Path, bool]] = []  # meta, source, needs copying
    skipped: list[tuple[Path, str]] = []
    for src in paths:
        if on_file is not None:
            on_file(src)
        try:
            meta, copy = _prepare(
                corpus_dir, src, taken_ids, taken_files,
                dict(title=title, date=date, issuer=issuer, report_id=report_id, publisher=publisher,
                     published=published, year=year, region=region, kind=kind, source_url=source_url),
            )
        except CorpusError as exc:
            if strict:
                raise
            skipped.append((src, str(exc)))
            continue
        taken_ids.add(meta.report_id)
        taken_files[meta.file] = meta.report_id
        added.append((meta, src, copy))
    if not added:
        return AddResult([], skipped)

    header = _manifest_header(mpath)
    new_text = header + _dump_entries([*existing, *(m for m, _, _ in added)])
    copied: list[Path] = []
    tmp_manifest = _write_temp(corpus_dir, new_text.encode("utf-8"))
    try:
        for meta, src, copy in added:
            if not copy:
                continue
            target = corpus_dir / meta.file
            tmp_copy = _temp_path(corpus_dir, target.suffix)
            try:
                shutil.copyfile(src, tmp_copy)
                os.replace(tmp_copy, target)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp_copy)
            copied.append(target)
        os.replace(tmp_manifest, mpath)
    except OSError as exc:
        for target in copied:
            with contextlib.suppress(OSError):
                target.unlink()
        raise CorpusError(
            f"{mpath}: cannot write manifest ({exc.strerror or exc}); nothing was changed"
        ) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_manifest)
    return AddResult([m for m, _, _ in added], skipped)


def detect_meta(src: Path, report: Report, overrides: dict[str, Any], rel: str, rid: str) -> ReportMeta:
    """A new report's metadata: what the flags say, else what its text and file name say."""
    derived = meta_from_file(src)
    title = (overrides.get("title") or report.parsed_title or derived.title).strip()
    facts = describe_title(title, src.stem)
    file_facts = describe_title(derived.title, src.stem)
    date = overrides.get("date")
    return ReportMeta(
        report_id=rid,
        title=title,
        file=rel,
        issuer=overrides.get("issuer"),
        publisher=overrides.get("publisher"),
        signed=_iso_date(date) if date else (report.signed_date or facts.date or file_facts.date),
        published=_iso_date(overrides["published"]) if overrides.get("published") else None,
        year=overrides["year"] if overrides.get("year") is not None else (facts.year or file_facts.year),
        region=overrides.get("region") or facts.region or file_facts.region,
        kind=overrides.get("kind") or facts.kind or file_facts.kind,
        source_url=overrides.get("source_url"),
        sha256=content_hash(src) if is_published(src) else None,
    )


def _prepare(
    corpus_dir: Path, src: Path, taken_ids: set[str], taken_files: dict[str, str], overrides: dict[str, Any]
) -> tuple[ReportMeta, bool]:
    """Check one file and work out its metadata; (meta, whether it must be copied in)."""
    if not src.is_file():
        raise CorpusError(f"{src}: file not found")
    if src.suffix.lower() not in REPORT_SUFFIXES:
        raise CorpusError(f"{src}: not a report file (expected {', '.join(REPORT_SUFFIXES)})")
    mpath = manifest_path(corpus_dir)
    rid = (overrides.get("report_id") or src.stem).strip()
    if not _ID_RE.match(rid):
        raise CorpusError(f"{src}: report id {rid!r} must be one word without spaces or slashes")
    from retrieval.parse import parse_report

    text = read_report_text(src, cache_dir=corpus_dir / TEXT_CACHE)  # keyed by content: valid once copied in
    report = parse_report(text, ReportMeta(report_id=rid, title=overrides.get("title") or src.stem, file=src.name))
    validate_report(report, src)

    inside = _is_inside(src, corpus_dir)
    rel = str(src.resolve().relative_to(corpus_dir.resolve())) if inside else src.name
    if rid in taken_ids:
        raise CorpusError(f"{mpath}: report id {rid!r} is already listed (choose another id)")
    if rel in taken_files:
        raise CorpusError(f"{mpath}: file {rel!r} is already listed as {taken_files[rel]!r}")
    target = corpus_dir / rel
    if not inside and target.exists() and content_hash(target) != content_hash(src):
        raise CorpusError(f"{target}: a different file with this name is already in the corpus directory")
    meta = detect_meta(src, report, overrides, rel, rid)
    return meta, not inside and not target.exists()


def remove_report(corpus_dir: str | Path, report_id: str, *, delete_file: bool = False) -> ReportMeta:
    """Drop a report from the manifest (atomically); its file stays unless delete_file."""
    corpus_dir = Path(corpus_dir)
    mpath = manifest_path(corpus_dir)
    if not mpath.exists():
        raise CorpusError(
            f"{corpus_dir}: has no {MANIFEST}; its reports are its files "
            f"(remove the file to drop {report_id!r})"
        )
    metas = load_manifest(corpus_dir)
    removed = next((m for m in metas if m.report_id == report_id), None)
    if removed is None:
        raise CorpusError(f"{mpath}: no report with id {report_id!r}")
    rest = [m for m in metas if m.report_id != report_id]
    tmp = _write_temp(corpus_dir, (_manifest_header(mpath) + _dump_entries(rest)).encode("utf-8"))
    try:
        os.replace(tmp, mpath)
    except OSError as exc:
        raise CorpusError(
            f"{mpath}: cannot write manifest ({exc.strerror or exc}); nothing was changed"
        ) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    if delete_file:
        with contextlib.suppress(FileNotFoundError):
            (corpus_dir / removed.file).unlink()
    return removed


def _is_inside(path: Path, directory: Path) -> bool:
    try:
        path.resolve().relative_to(directory.resolve())
    except ValueError:
        return False
    return True


def _manifest_header(path: Path) -> str:
    """The comment lines that open an existing manifest (kept when it is rewritten)."""
    if not path.exists():
        return _DEFAULT_HEADER + "\n"
    lines = []
    for line in path.read_text(encoding="utf-8-sig").splitlines():
        if line.startswith("#") or (not line.strip() and lines):
            lines.append(line)
            continue
        break
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines) + "\n\n" if lines else ""


def _entry(meta: ReportMeta) -> dict[str, Any]:
    values = {
        "id": meta.report_id,
        "file": meta.file,
        "title": meta.title,
        "issuer": meta.issuer,
        "publisher": meta.publisher,
        "signed": meta.signed,
        "published": meta.published,
        "year": meta.year,
        "region": meta.region,
        "kind": meta.kind,
        "source_url": meta.source_url,
        "sha256": meta.sha256,
    }
    return {k: v for k, v in values.items() if v is not None}


def _dump_entries(metas: Sequence[ReportMeta]) -> str:
    import tomli_w

    return tomli_w.dumps({"report": [_entry(m) for m in metas]})


def _temp_path(directory: Path, suffix: str) -> Path:
    fd, name = tempfile.mkstemp(prefix=".reportqa-", suffix=suffix + ".tmp", dir=directory)
    os.close(fd)
    return Path(name)


def _write_temp(directory: Path, data: bytes) -> Path:
    tmp = _temp_path(directory, ".toml")
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise CorpusError(f"{directory}: cannot write a temporary manifest ({exc.strerror or exc})") from None
    return tmp


__all__ = [
    "MANIFEST",
    "AddResult",
    "add_report",
    "add_reports",
    "expand_report_files",
    "content_hash",
    "discover",
    "load_corpus",
    "load_manifest",
    "load_report",
    "meta_from_file",
    "region_of",
    "remove_report",
    "validate_report",
]
