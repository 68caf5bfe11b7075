"""Content fingerprints of model files, cached by (size, mtime) so later runs only stat the files.

Why: `model_id` must change whenever vectors would change, and is needed on every process start;
hashing a 470 MB model each time would eat the cold-start budget.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

SKIPPED_NAMES = {"README.md", ".gitattributes"}  # documentation never changes vectors


def file_sha256(path: Path, cache_file: Path | None = None) -> str:
    """SHA-256 of a file's bytes; reuses the cached digest while size and mtime are unchanged."""
    path = path.resolve()
    st = path.stat()
    key, stamp = str(path), [st.st_size, st.st_mtime_ns]
    cache = _read_cache(cache_file)
    hit = cache.get(key)
    if isinstance(hit, list) and len(hit) == 3 and hit[:2] == stamp:
        return str(hit[2])
    with open(path, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    if cache_file is not None:
        cache[key] = [*stamp, digest]
        _write_cache(cache_file, cache)
    return digest


def dir_fingerprint(directory: Path, cache_file: Path | None = None) -> str:
    """SHA-256 over (relative path, content digest) of every file that can influence the vectors."""
    outer = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        rel = path.relative_to(directory)
        if path.name in SKIPPED_NAMES or any(part.startswith(".") for part in rel.parts):
            continue
        outer.update(rel.as_posix().encode() + b"\0" + file_sha256(path, cache_file).encode() + b"\n")
    return outer.hexdigest()


def _read_cache(cache_file: Path | None) -> dict:
    if cache_file is None:
        return {}
    try:
        data = json.loads(cache_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(cache_file: Path, cache: dict) -> None:
    """Best effort and atomic: a read-only data directory only costs re-hashing next time."""
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".fingerprints-", dir=cache_file.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(cache, f)
        os.replace(tmp, cache_file)
    except OSError:
        pass
