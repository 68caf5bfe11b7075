"""The persisted index under REPORTQA_HOME/index: what was built from what, and whether to trust it.

Layout:
    manifest.json          model id, dimension, parser version, corpus hash, per-report entries,
                           sha256 of every file it lists (written last: a crash leaves the old one)
    vectors/<key>.npy      one report's sentence vectors; key = hash(model, parser, passage format,
                           report content + metadata) so a changed report re-embeds only itself
    dense/*.faiss          the assembled paragraph and sentence indexes, memory-mapped at load
    lexical/               the BM25 postings of the whole corpus (own checksummed manifest)
    lexical-tokens/        per-report BM25 token ids (a cache: a damaged file is re-tokenized)

Every file is written to a temporary name and renamed into place; every file is checked against
its sha256 before use, so a truncated or corrupted file is rebuilt, never trusted.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from retrieval.errors import IndexStoreError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"


@dataclass
class ReportEntry:
    report_id: str
    key: str  # what the vectors were computed from; see module docstring
    paragraphs: int
    vectors_file: str  # relative to the index dir
    sentences: int = 0  # its rows in the assembled sentence index (0 in manifests written before)


@dataclass
class IndexManifest:
    model_id: str
    dim: int
    parser_version: str
    corpus_hash: str
    reports: list[ReportEntry] = field(default_factory=list)
    checksums: dict[str, str] = field(default_factory=dict)  # relative path -> sha256
    built_at: str = ""
    format: int = FORMAT_VERSION
    source_fingerprint: str = ""  # `indexing.source_fingerprint` of the reports the keys were computed from

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=1)

    @classmethod
    def from_json(cls, raw: str) -> IndexManifest:
        data = json.loads(raw)
        data["reports"] = [ReportEntry(**r) for r in data.get("reports", [])]
        return cls(**data)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def seal(payload: bytes) -> bytes:
    """A cache file's bytes: the payload's sha256 (hex), a newline, the payload (see `unseal`)."""
    return hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload


def unseal(raw: bytes) -> bytes | None:
    """The payload of `seal`ed bytes, or None when it does not match its checksum."""
    digest, _, payload = raw.partition(b"\n")
    return payload if hashlib.sha256(payload).hexdigest().encode() == digest else None


@contextlib.contextmanager
def exclusive_lock(path: Path, failed: Callable[[OSError], Exception], mode: int = 0o600) -> Iterator[None]:
    """Hold an exclusive flock on `path` (created if missing) for the block: processes sharing a
    directory take turns (index builds, model builds, store migrations). A lock file that cannot be
    created raises `failed(error)`, the caller's one-line error."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, mode)
    except OSError as exc:
        raise failed(exc) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, hashed from a memory map in one call: no GIL held throughout, so another
    thread (the BM25 rebuild) runs on meanwhile; chunked reads would hand the GIL back and forth a
    thousand times for a 94 MB file. OSError if unreadable; an empty file hashes as empty."""
    import mmap

    with open(path, "rb") as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            return hashlib.sha256(b"").hexdigest()
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            return hashlib.sha256(mapped).hexdigest()


def atomic_write_with(path: Path, write: Callable[[Path], None]) -> None:
    """`write(temp_path)` a temp file in the same directory, fsync, rename: readers see old or new,
    never half (for writers that want a path, such as FAISS: no in-memory copy of the file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically (see `atomic_write_with`)."""
    atomic_write_with(path, lambda tmp: tmp.write_bytes(data))


def vectors_to_bytes(vectors: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(vectors, dtype=np.float32), allow_pickle=False)
    return buf.getvalue()


def vectors_from_bytes(data: bytes) -> np.ndarray:
    """The array of a .npy file's bytes, as a read-only view of them (no copy: a rebuild after one
    report changed reads 94 MB of them; np.load from a BytesIO copied them again in chunks, ~0.6 s).
    ValueError if the bytes are not a float32 .npy array."""
    import io

    from numpy.lib import format as npy

    head = io.BytesIO(data)
    version = npy.read_magic(head)
    if version == (1, 0):
        shape, fortran, dtype = npy.read_array_header_1_0(head)
    elif version == (2, 0):
        shape, fortran, dtype = npy.read_array_header_2_0(head)
    else:
        raise ValueError(f"unsupported .npy version {version}")
    if fortran or dtype != np.float32:
        raise ValueError("not a C-ordered float32 array")
    count = int(np.prod(shape)) if shape else 1
    return np.frombuffer(data, dtype=np.float32, count=count, offset=head.tell()).reshape(shape)


class IndexStore:
    """Reads and writes one index directory; every read is verified against the manifest."""

    def __init__(self, root: Path):
        self.root = root

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    def read_only(self) -> bool:
        """The index directory exists and this process may not write it (an installed artifact)."""
        return self.root.is_dir() and not os.access(self.root, os.W_OK)

    def read_manifest(self) -> IndexManifest | None:
        """The manifest, or None when there is none or it cannot be trusted (then everything rebuilds)."""
        try:
            raw = self.manifest_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as e:
            raise IndexStoreError(f"{self.manifest_path}: cannot read index manifest ({e.strerror})") from e
        try:
            manifest = IndexManifest.from_json(raw)
        except (ValueError, TypeError, KeyError):
            return None
        return manifest if manifest.format == FORMAT_VERSION else None

    def write_manifest(self, manifest: IndexManifest, *, keep_built_at: bool = False) -> None:
        if not keep_built_at:
            manifest.built_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        atomic_write_bytes(self.manifest_path, manifest.to_json().encode("utf-8"))

    def read_verified(self, rel: str, expected_sha: str | None) -> bytes | None:
        """File bytes if present and matching the checksum, else None (the caller rebuilds it)."""
        if not expected_sha:
            return None
        try:
            data = (self.root / rel).read_bytes()
        except OSError:
            return None
        return data if sha256_bytes(data) == expected_sha else None

    def write_file(self, rel: str, data: bytes) -> str:
        """Atomically write a file; returns its sha256 for the manifest."""
        atomic_write_bytes(self.root / rel, data)
        return sha256_bytes(data)

    def write_with(self, rel: str, write: Callable[[Path], None]) -> str:
        """Atomically write a file through `write(temp_path)`; returns its sha256 for the manifest."""
        atomic_write_with(self.root / rel, write)
        return file_sha256(self.root / rel)

    def size_bytes(self) -> int:
        if not self.root.is_dir():
            return 0
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())

    def remove_unlisted(self, manifest: IndexManifest) -> None:
        """Delete vector files no report refers to any more (after a successful manifest write)."""
        keep = {self.root / rel for rel in manifest.checksums}
        vec_dir = self.root / "vectors"
        if vec_dir.is_dir():
            for p in vec_dir.iterdir():
                if p not in keep and not p.name.startswith("."):
                    with contextlib.suppress(OSError):
                        p.unlink()

    @contextlib.contextmanager
    def build_lock(self) -> Iterator[None]:
        """One builder at a time per index directory (a second process waits, then reuses the work)."""
        def failed(e: OSError) -> IndexStoreError:
            return IndexStoreError(f"{self.root}: cannot create index directory ({e.strerror})")

        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise failed(e) from e
        with exclusive_lock(self.root / ".build.lock", failed):
            yield
