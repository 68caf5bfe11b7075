"""Build or load the search index for a list of reports, re-embedding only what changed.

What is embedded is every sentence of every paragraph (see `retrieval.passages`); a paragraph's
vector is the normalised mean of its sentence vectors. A report's sentence vectors are keyed by
everything they depend on (model id, parser version, passage format and the exact texts), so
editing one report re-embeds that report alone; a new model or parser re-embeds everything. After
any change the BM25 postings are recomputed (from per-report cached token ids) and the per-report
vectors assembled into two FAISS files; while nothing changes, a load memory-maps those files and
reads nothing else (see `ensure_index`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import lru_cache
from itertools import chain
from operator import itemgetter
from pathlib import Path

import numpy as np

from retrieval.dense import DenseIndex
from retrieval.document import PARSER_VERSION, Report
from retrieval.errors import IndexStoreError
from retrieval.index_store import (
    IndexManifest,
    IndexStore,
    ReportEntry,
    file_sha256,
    seal,
    unseal,
    vectors_from_bytes,
    vectors_to_bytes,
)
from retrieval.lexical import (
    DEFAULT_B,
    DEFAULT_K1,
    DEFAULT_METHOD,
    DEFAULT_SCHEME,
    TOKENIZER_VERSION,
    LexicalIndex,
    tokenize,
)
from retrieval.passages import PASSAGE_FORMAT, Passage

LEXICAL_DIR = "lexical"
# The assembled FAISS indexes (paragraphs, sentences): memory-mapped when the corpus is unchanged.
DENSE_FILES = ("dense/paragraphs.faiss", "dense/sentences.faiss")
TOKENS_DIR = "lexical-tokens"  # per-report BM25 tokens: a rebuild after one report changed re-tokenizes only it


@dataclass
class LoadedIndex:
    paragraph_vectors: np.ndarray  # one row per passage, in flatten() order
    sentence_vectors: np.ndarray  # one row per sentence, passages in order, sentences in order
    sentence_owner: np.ndarray  # passage id of each sentence row
    first_sentence: np.ndarray  # row of each passage's first sentence (len = passages + 1)
    dense: DenseIndex  # over paragraph vectors (the arrays above are views of these indexes' storage)
    sentence_dense: DenseIndex  # over sentence vectors
    lexical: LexicalIndex
    manifest: IndexManifest
    embedded: list[str] = field(default_factory=list)  # report ids (re)embedded by this call


def _group(passages: Sequence[Passage], n_reports: int) -> list[list[Passage]]:
    by_report: list[list[Passage]] = [[] for _ in range(n_reports)]
    for p in passages:
        by_report[p.report_index].append(p)
    return by_report


def report_key(model_id: str, report: Report, passages: Sequence[Passage]) -> str:
    """Everything a report's vectors depend on, hashed."""
    h = hashlib.sha256()
    h.update(json.dumps([model_id, PARSER_VERSION, PASSAGE_FORMAT, report.meta.report_id]).encode())
    # Bytes as before ("\x00" + sentence … "\x01" per passage), hashed in one call: keys stay valid.
    h.update("".join("".join("\x00" + s.text for s in p.sentences) + "\x01" for p in passages).encode("utf-8"))
    return h.hexdigest()[:32]


def corpus_hash(keys: Sequence[str], passages: Sequence[Passage]) -> str:
    """Identity of the whole index: report keys plus what the lexical leg indexes."""
    h = hashlib.sha256("\n".join(keys).encode())
    h.update("".join(p.indexed_text for p in passages).encode("utf-8"))
    return h.hexdigest()[:32]


_KEY_CODE = ("passages.py", "indexing.py")  # the code between a parsed report and its index keys


@lru_cache(maxsize=1)
def _key_code_hash() -> str:
    h = hashlib.sha256()
    for name in _KEY_CODE:
        h.update(name.encode() + b"\x00" + (Path(__file__).parent / name).read_bytes())
    return h.hexdigest()


def source_fingerprint(model_id: str, reports: Sequence[Report]) -> str | None:
    """What the report keys and the corpus hash are computed from, from the reports' source keys.

    Equal fingerprints mean equal keys and corpus hash, so an unchanged corpus opens without hashing
    its 61k sentences again (~0.1 s of a cold start at 150 reports). None when a report was not
    loaded from a corpus directory (no source key): then the keys are computed.
    """
    if not reports or any(r.source_key is None for r in reports):
        return None
    h = hashlib.sha256(json.dumps([model_id, PARSER_VERSION, PASSAGE_FORMAT, _key_code_hash()]).encode())
    h.update("\n".join(r.source_key or "" for r in reports).encode())
    return h.hexdigest()[:32]


@dataclass
class IndexPlan:
    keys: list[str]  # per report, corpus order
    corpus_id: str
    manifest: IndexManifest | None  # the existing manifest, if it belongs to this model and parser
    fingerprint: str | None  # `source_fingerprint` of these reports
    verify: bool = False  # read and check every per-report vector file (`reportqa index build`)


def plan(store: IndexStore, model_id: str, reports: Sequence[Report], passages: Sequence[Passage]) -> IndexPlan:
    """Per-report keys, the corpus hash and the existing manifest (if it belongs to this model/parser).

    Taken from the manifest when it was written for the same source fingerprint, else computed.
    """
    manifest = store.read_manifest()
    if manifest and (manifest.model_id != model_id or manifest.parser_version != PARSER_VERSION):
        manifest = None
    fingerprint = source_fingerprint(model_id, reports)
    if (
        manifest is not None
        and fingerprint is not None
        and manifest.source_fingerprint == fingerprint
        and [e.report_id for e in manifest.reports] == [r.meta.report_id for r in reports]
    ):
        return IndexPlan([e.key for e in manifest.reports], manifest.corpus_hash, manifest, fingerprint)
    keys = [report_key(model_id, r, ps) for r, ps in zip(reports, _group(passages, len(reports)), strict=True)]
    return IndexPlan(keys, corpus_hash(keys, passages), manifest, fingerprint)


def stale_reports(keys: Sequence[str], reports: Sequence[Report], manifest: IndexManifest | None) -> list[str]:
    """Report ids whose vectors are missing or were built from something else (no file checks)."""
    known = {e.key for e in manifest.reports} if manifest else set()
    return [r.meta.report_id for r, k in zip(reports, keys, strict=True) if k not in known]


def _load_vectors(store: IndexStore, entry: ReportEntry | None, checksums: dict[str, str]) -> np.ndarray | None:
    if entry is None:
        return None
    data = store.read_verified(entry.vectors_file, checksums.get(entry.vectors_file))
    if data is None:
        return None
    try:
        return vectors_from_bytes(data)
    except ValueError:
        return None


def ensure_index(
    store: IndexStore,
    reports: Sequence[Report],
    passages: Sequence[Passage],
    embedder,
    *,
    progress: bool = False,
    rebuild: bool = False,
    verify: bool = False,
) -> LoadedIndex:
    """Load the index, (re)building the parts that are missing, stale, truncated or corrupted.

    When nothing changed since the last build, the assembled FAISS files are memory-mapped (their
    checksums are computed on a second thread while the rest loads) and the per-report vectors —
    only inputs to the next assembly — are not read: they are verified (and a damaged one re-embedded)
    at the next change, or now with `verify` (`reportqa index build`).
    """
    with store.build_lock():
        known = plan(store, embedder.model_id, reports, passages)
        manifest = None if rebuild else known.manifest
        with ThreadPoolExecutor(max_workers=1) as pool:
            hashed = None
            if not verify and manifest is not None and all(rel in manifest.checksums for rel in DENSE_FILES):
                hashed = pool.submit(_file_checksums, store, DENSE_FILES)
            current = manifest is not None and manifest.corpus_hash == known.corpus_id
            lexical = _load_lexical(store) if current else None
            if current and lexical is not None and len(lexical) == len(passages) and hashed is not None:
                loaded = _open_assembled(store, manifest, hashed.result(), passages)
                if loaded is not None:
                    _record_fingerprint(store, manifest, known.fingerprint)
                    return LoadedIndex(*loaded, lexical=lexical, manifest=manifest)
        return _build(store, reports, passages, embedder, replace(known, manifest=manifest, verify=verify), lexical,
                      progress)


def open_readonly(store: IndexStore, reports: Sequence[Report], passages: Sequence[Passage], embedder) -> LoadedIndex:
    """The index as a built artifact (replicas): verified and memory-mapped, never written, locked or
    rebuilt. IndexStoreError (one line, naming `reportqa index build`) when it is missing, built for
    another model or corpus, or damaged."""
    where = f"index {store.root} (read-only)"
    known = plan(store, embedder.model_id, reports, passages)
    manifest = known.manifest
    if manifest is None:
        raise IndexStoreError(f"{where}: none built for model {embedder.model_id}; run `reportqa index build`")
    if manifest.corpus_hash != known.corpus_id:
        stale = stale_reports(known.keys, reports, manifest)
        raise IndexStoreError(
            f"{where}: stale for this corpus ({len(stale)} report(s) new or changed"
            f"{', e.g. ' + stale[0] if stale else ''}); run `reportqa index build` and ship the new index"
        )
    with ThreadPoolExecutor(max_workers=1) as pool:
        hashed = pool.submit(_file_checksums, store, DENSE_FILES)
        lexical = _load_lexical(store)
        loaded = _open_assembled(store, manifest, hashed.result(), passages)
    if lexical is None or len(lexical) != len(passages) or loaded is None:
        raise IndexStoreError(f"{where}: damaged (a file is missing or fails its checksum); run `reportqa index build`")
    return LoadedIndex(*loaded, lexical=lexical, manifest=manifest)


def _record_fingerprint(store: IndexStore, manifest: IndexManifest, fingerprint: str | None) -> None:
    """Note the source fingerprint in a current manifest written without it (best effort: a read-only
    index only keeps computing the keys)."""
    if fingerprint is None or manifest.source_fingerprint == fingerprint:
        return
    manifest.source_fingerprint = fingerprint
    with contextlib.suppress(OSError, IndexStoreError):
        store.write_manifest(manifest, keep_built_at=True)


def _build(store, reports, passages, embedder, known: IndexPlan, lexical, progress) -> LoadedIndex:
    """Embed what is missing or stale, write the index files, assemble (under the build lock).

    The BM25 index, when it must be rebuilt, is rebuilt on a second thread meanwhile: it is mostly
    Python, the vector side mostly numpy/FAISS/ONNX Runtime, which release the GIL (after removing a
    report from the 150-report library: ~0.5 s of the next `ask`).
    """
    grouped = _group(passages, len(reports))
    with ThreadPoolExecutor(max_workers=1) as pool:
        rebuilt = None
        if lexical is None or len(lexical) != len(passages):
            rebuilt = pool.submit(_rebuild_lexical, store, grouped, passages, known.manifest is not None)
        dense_part = _build_dense(store, reports, passages, grouped, embedder, known, progress)
        if rebuilt is not None:
            lexical = rebuilt.result()
    new_manifest, per_report_done, assembled = dense_part
    store.write_manifest(new_manifest)
    store.remove_unlisted(new_manifest)
    return LoadedIndex(*assembled, lexical=lexical, manifest=new_manifest, embedded=per_report_done)


def _rebuild_lexical(store: IndexStore, grouped, passages, incremental: bool = True) -> LexicalIndex:
    """The BM25 index of these passages, saved. When reports were only removed since the saved index
    was built (each report's indexed texts are identified by their token key), it is cut down to the
    rest (`LexicalIndex.restricted_to`, ~0.1 s on the library); otherwise computed from the per-report
    token cache (~2 s). Cache files of reports no longer present are removed either way."""
    keys = [_token_key([p.indexed_text for p in group]) for group in grouped]
    previous = _load_lexical(store) if incremental else None
    if previous is not None and (previous.scheme, previous.k1, previous.b, previous.method) != (
        DEFAULT_SCHEME, DEFAULT_K1, DEFAULT_B, DEFAULT_METHOD
    ):
        previous = None  # built with other BM25 settings: compute anew
    lexical = previous.restricted_to(keys) if previous is not None else None
    if lexical is not None and len(lexical) == len(passages):
        _remove_token_files_but(store, {f"{k}.npz" for k in keys})
    else:
        vocab, ids, offsets = passage_token_ids(store, grouped, passages, keys)
        lexical = LexicalIndex.build_from_ids(vocab, ids, offsets,
                                              groups=[(k, len(g)) for k, g in zip(keys, grouped, strict=True)])
    lexical.save(store.root / LEXICAL_DIR)
    return lexical


def _build_dense(store, reports, passages, grouped, embedder, known: IndexPlan, progress):
    """Per-report vectors (verified, or embedded now), the new manifest, the assembled FAISS files."""
    keys, manifest = known.keys, known.manifest
    old = {e.key: e for e in manifest.reports} if manifest else {}
    checksums = manifest.checksums if manifest else {}
    sentences_of = [[s.text for p in ps for s in p.sentences] for ps in grouped]

    # Unchanged reports' rows of the verified assembled file (150 files not read), else their own files.
    served = None if known.verify else _assembled_rows(store, manifest, keys)
    per_report = served[0] if served is not None else [_load_vectors(store, old.get(k), checksums) for k in keys]
    for i, vecs in enumerate(per_report):
        if vecs is not None and (vecs.ndim != 2 or len(vecs) != len(sentences_of[i])):
            per_report[i] = None
    todo = [i for i, v in enumerate(per_report) if v is None]
    flat = [t for i in todo for t in sentences_of[i]]
    if flat:
        # Reports repeat themselves (boilerplate, a report saved twice): encode each text once.
        unique = list(dict.fromkeys(flat))
        row = {t: i for i, t in enumerate(unique)}
        encoded = embedder.encode_passages(unique, progress=progress)[[row[t] for t in flat]]
        at = 0
        for i in todo:
            n = len(sentences_of[i])
            per_report[i] = encoded[at : at + n]
            at += n

    new_manifest = IndexManifest(
        model_id=embedder.model_id,
        dim=embedder.dim,
        parser_version=PARSER_VERSION,
        corpus_hash=known.corpus_id,
        source_fingerprint=known.fingerprint or "",
    )
    written = set(todo)
    for i, (report, key) in enumerate(zip(reports, keys, strict=True)):
        vecs = per_report[i]
        rel = f"vectors/{key}.npy"
        if i in written:
            new_manifest.checksums[rel] = store.write_file(rel, vectors_to_bytes(vecs))
        else:
            new_manifest.checksums[rel] = checksums[rel]
        new_manifest.reports.append(ReportEntry(
            report_id=report.meta.report_id, key=key, paragraphs=len(grouped[i]), vectors_file=rel,
            sentences=len(sentences_of[i]),
        ))

    known_paragraphs = None
    if served is not None:  # a re-embedded report's paragraph vectors are computed anew
        known_paragraphs = [None if i in set(todo) else rows for i, rows in enumerate(served[1])]
    assembled = assemble(per_report, passages, embedder.dim, store, known_paragraphs, [len(g) for g in grouped])
    del per_report  # the assembled copies are all that is needed from here on (peak RSS of a build)
    for rel, index in zip(DENSE_FILES, assembled[4:], strict=True):
        new_manifest.checksums[rel] = store.write_with(rel, index.save)
    return new_manifest, [reports[i].meta.report_id for i in todo], assembled


def _assembled_rows(store: IndexStore, manifest: IndexManifest | None, keys: Sequence[str]):
    """Each report's sentence and paragraph vectors as rows of the assembled indexes (checked against
    their checksums), None for a report they do not hold; or None when they cannot be used (missing,
    damaged, or a manifest from before per-report row counts). With the indexes (keep them while the
    rows are in use). After one report was added or removed this replaces reading and hashing 150
    per-report files and summing 13k paragraphs again; the per-report files stay the source a
    damaged assembled file is rebuilt from, and `reportqa index build` checks them all."""
    if manifest is None or any(not manifest.checksums.get(rel) for rel in DENSE_FILES):
        return None
    if any(e.sentences <= 0 and e.paragraphs > 0 for e in manifest.reports):
        return None
    if _file_checksums(store, DENSE_FILES) != {rel: manifest.checksums[rel] for rel in DENSE_FILES}:
        return None
    try:  # every row is read: one sequential read each, not page faults through a mapping
        paragraphs, sentences = (DenseIndex.open(store.root / rel, mapped=False) for rel in DENSE_FILES)
    except (ValueError, OSError):
        return None
    out = []
    for index, size in ((sentences, "sentences"), (paragraphs, "paragraphs")):
        vectors = index.vectors
        starts = np.cumsum([0] + [getattr(e, size) for e in manifest.reports])
        if vectors.shape != (int(starts[-1]), manifest.dim):
            return None
        rows = {e.key: (int(a), int(b)) for e, a, b in zip(manifest.reports, starts[:-1], starts[1:], strict=True)}
        out.append([vectors[rows[k][0] : rows[k][1]] if k in rows else None for k in keys])
    return out[0], out[1], (paragraphs, sentences)


def _file_checksums(store: IndexStore, rels: Sequence[str]) -> dict[str, str | None]:
    """SHA-256 of index files (None if unreadable or empty; see `index_store.file_sha256`: the main
    thread loads on undisturbed meanwhile)."""
    out: dict[str, str | None] = {}
    for rel in rels:
        try:
            path = store.root / rel
            out[rel] = file_sha256(path) if path.stat().st_size else None
        except OSError:
            out[rel] = None
    return out


def _sentence_layout(passages: Sequence[Passage]) -> tuple[np.ndarray, np.ndarray]:
    """(owner passage of each sentence row, first row of each passage + the total)."""
    counts = np.fromiter((len(p.sentences) for p in passages), dtype=np.int64, count=len(passages))
    first = np.zeros(len(passages) + 1, dtype=np.int64)
    np.cumsum(counts, out=first[1:])
    owner = np.repeat(np.arange(len(passages), dtype=np.int64), counts)
    return owner, first


def _open_assembled(store: IndexStore, manifest: IndexManifest, hashes: dict, passages: Sequence[Passage]):
    """The memory-mapped paragraph and sentence indexes of an unchanged corpus, or None when a file
    is missing, altered or does not fit the passages (then the caller rebuilds them)."""
    if any(hashes.get(rel) != manifest.checksums.get(rel) for rel in DENSE_FILES):
        return None
    try:
        dense, sentence_dense = (DenseIndex.open(store.root / rel) for rel in DENSE_FILES)
    except (ValueError, OSError):
        return None
    owner, first = _sentence_layout(passages)
    para, sent = dense.vectors, sentence_dense.vectors
    if para.shape != (len(passages), manifest.dim) or sent.shape != (int(first[-1]), manifest.dim):
        return None
    return para, sent, owner, first, dense, sentence_dense


def _normalized(para: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(para, axis=1, keepdims=True)
    para /= np.maximum(norms, 1e-12)
    return para


def _paragraph_sums(sent: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Sum of each passage's sentence rows. np.add.reduceat takes 0.5 s on 61k×384 rows; adding the
    j-th sentence of every passage that has one, for j = 0, 1, …, takes milliseconds (few sentences each)."""
    starts, counts = first[:-1], np.diff(first)
    out = sent[starts].astype(np.float32)
    for j in range(1, int(counts.max(initial=1))):
        has = np.flatnonzero(counts > j)
        out[has] += sent[starts[has] + j]
    return out


def assemble(per_report, passages, dim, store, known_paragraphs=None, paragraph_counts=None):
    """Concatenate per-report sentence vectors, derive paragraph vectors, build the FAISS indexes.

    known_paragraphs: per report, its paragraph vectors when they are already known (rows of the
    assembled paragraph index for an unchanged report), else None: computed from its sentences;
    paragraph_counts: then each report's number of passages.
    """
    arrays = [v for v in per_report if v is not None and len(v)]
    sent = np.concatenate(arrays, axis=0) if arrays else np.zeros((0, dim), dtype=np.float32)
    owner, first = _sentence_layout(passages)
    if sent.shape != (int(first[-1]), dim):
        raise IndexStoreError(
            f"{store.root}: index holds {sent.shape[0]}×{sent.shape[1]} vectors for "
            f"{int(first[-1])} sentences of dimension {dim}; run `reportqa index build` to rebuild"
        )
    para = np.zeros((len(passages), dim), dtype=np.float32)
    if len(sent) and known_paragraphs is None:
        para = _normalized(_paragraph_sums(sent, first))  # every passage has ≥ 1 sentence
    elif len(sent):
        p0 = 0  # passages are grouped by report, in corpus order
        for known, count in zip(known_paragraphs, paragraph_counts, strict=True):
            p1 = p0 + count
            if known is not None and len(known) == count:
                para[p0:p1] = known
            elif p1 > p0:
                local = first[p0 : p1 + 1] - first[p0]
                para[p0:p1] = _normalized(_paragraph_sums(sent[first[p0] : first[p1]], local))
            p0 = p1
    dense, sentence_dense = DenseIndex.build(para), DenseIndex.build(sent)
    return dense.vectors, sentence_dense.vectors, owner, first, dense, sentence_dense


@dataclass(frozen=True)
class ReportTokens:
    """One report's BM25 tokens: its own vocabulary, and each passage's tokens as ids into it."""

    vocab: list[str]
    ids: np.ndarray  # int32, all passages' token ids one after the other
    offsets: np.ndarray  # int64, passage i's ids are ids[offsets[i]:offsets[i + 1]]

    @classmethod
    def of(cls, texts: Sequence[str]) -> ReportTokens:
        vocab: dict[str, int] = {}
        docs = [[vocab.setdefault(t, len(vocab)) for t in tokenize(text, DEFAULT_SCHEME)] for text in texts]
        offsets = np.zeros(len(docs) + 1, dtype=np.int64)
        np.cumsum([len(d) for d in docs], out=offsets[1:])
        ids = np.fromiter((i for d in docs for i in d), dtype=np.int32, count=int(offsets[-1]))
        return cls(list(vocab), ids, offsets)

    def to_bytes(self) -> bytes:
        """A `seal`ed .npz of the arrays and the vocabulary as newline-joined UTF-8."""
        buf = io.BytesIO()
        vocab = np.frombuffer("\n".join(self.vocab).encode("utf-8"), dtype=np.uint8)
        np.savez(buf, ids=self.ids, offsets=self.offsets, vocab=vocab)
        return seal(buf.getvalue())

    @classmethod
    def from_bytes(cls, raw: bytes, n_passages: int) -> ReportTokens | None:
        """The cached tokens, or None if the file is damaged or does not fit (then: tokenize again)."""
        payload = unseal(raw)
        if payload is None:
            return None
        try:
            with np.load(io.BytesIO(payload), allow_pickle=False) as arrays:
                ids, offsets, vocab_bytes = arrays["ids"], arrays["offsets"], arrays["vocab"]
            text = vocab_bytes.tobytes().decode("utf-8")
        except (OSError, ValueError, KeyError, UnicodeDecodeError):
            return None
        vocab = text.split("\n") if text else []
        if (
            ids.dtype != np.int32 or offsets.dtype != np.int64 or offsets.shape != (n_passages + 1,)
            or offsets[0] != 0 or offsets[-1] != len(ids) or np.any(np.diff(offsets) < 0)
            or (len(ids) and not 0 <= int(ids.min()) <= int(ids.max()) < len(vocab))
        ):
            return None
        return cls(vocab, ids, offsets)


def passage_token_ids(
    store: IndexStore, grouped: Sequence[Sequence[Passage]], passages: Sequence[Passage],
    keys: Sequence[str] | None = None,
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The corpus vocabulary, every passage's token ids one after the other (passage order) and
    where each passage's start, for `LexicalIndex.build_from_ids`; keys: each group's `_token_key`,
    when already computed.

    Tokens come per report from the token cache when its texts are unchanged — each cache file
    carries its own sha256 and is re-tokenized if it does not match — else are tokenized now and
    cached. Caching ids against a per-report vocabulary (not token strings) makes the corpus-wide
    mapping one lookup per distinct token of a report, not per token (with the numpy BM25, the
    rebuild of a 150-report library after one report changed: ~1.2 s instead of ~2.6 s). Files of
    reports no longer present are removed.
    """
    in_groups = (p for ps in grouped for p in ps)
    if not all(a is b for a, b in zip(in_groups, passages, strict=True)):
        raise ValueError("passages must come report by report, in corpus order")
    cached: list[ReportTokens] = []
    keep: set[str] = set()
    for i, group in enumerate(grouped):
        texts = [p.indexed_text for p in group]
        name = f"{keys[i] if keys is not None else _token_key(texts)}.npz"
        keep.add(name)
        tokens = _read_tokens(store.root / TOKENS_DIR / name, len(texts))
        if tokens is None:
            tokens = ReportTokens.of(texts)
            with contextlib.suppress(OSError):  # a cache: the index is still right without it
                store.write_file(f"{TOKENS_DIR}/{name}", tokens.to_bytes())
        cached.append(tokens)
    _remove_token_files_but(store, keep)
    # The corpus vocabulary, sorted (as LexicalIndex keeps it); the ~1M lookups are done by
    # dict.fromkeys and itemgetter in C (0.25 s on the library; a Python loop takes twice that).
    vocab = sorted(dict.fromkeys(chain.from_iterable(t.vocab for t in cached)))
    position = {t: i for i, t in enumerate(vocab)}
    parts = [_lookup(position, t.vocab)[t.ids] for t in cached]
    offsets = np.zeros(len(passages) + 1, dtype=np.int64)
    if cached:
        np.cumsum(np.concatenate([np.diff(t.offsets) for t in cached]), out=offsets[1:])
    ids = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    return vocab, ids, offsets


def _remove_token_files_but(store: IndexStore, keep: set[str]) -> None:
    directory = store.root / TOKENS_DIR
    if directory.is_dir():
        for path in directory.iterdir():
            if path.name not in keep and not path.name.startswith("."):
                with contextlib.suppress(OSError):
                    path.unlink()


def _lookup(mapping: dict[str, int], keys: Sequence[str]) -> np.ndarray:
    if len(keys) > 1:
        return np.array(itemgetter(*keys)(mapping), dtype=np.int64)
    return np.array([mapping[k] for k in keys], dtype=np.int64)  # itemgetter of one key gives no tuple


def _token_key(texts: Sequence[str]) -> str:
    h = hashlib.sha256(json.dumps([TOKENIZER_VERSION, DEFAULT_SCHEME]).encode())
    h.update("".join("\x00" + text for text in texts).encode("utf-8"))
    return h.hexdigest()[:32]


def _read_tokens(path, n: int) -> ReportTokens | None:
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    return ReportTokens.from_bytes(raw, n)


def _load_lexical(store: IndexStore) -> LexicalIndex | None:
    try:
        return LexicalIndex.load(store.root / LEXICAL_DIR)
    except (IndexStoreError, OSError, ValueError):
        return None
