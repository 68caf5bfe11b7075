"""Build or load the search index for a list of reports, re-embedding only what changed.

What is embedded is every sentence of every paragraph (see `retrieval.passages`); a paragraph's
vector is the normalised mean of its sentence vectors. A report's sentence vectors are keyed by
everything they depend on (model id, parser version, passage format and the exact texts), so
editing one report re-embeds that report alone; a new model or parser re-embeds everything. The
BM25 index is rebuilt whenever any report changed (it is cheap). The FAISS indexes are assembled
from the verified per-report vectors at load (milliseconds for exact indexes).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from retrieval.dense import DenseIndex
from retrieval.document import Report
from retrieval.errors import IndexStoreError
from retrieval.index_store import IndexManifest, IndexStore, ReportEntry, vectors_from_bytes, vectors_to_bytes
from retrieval.lexical import DEFAULT_SCHEME, TOKENIZER_VERSION, LexicalIndex, tokenize
from retrieval.parse import PARSER_VERSION
from retrieval.passages import PASSAGE_FORMAT, Passage

LEXICAL_DIR = "lexical"
TOKENS_DIR = "lexical-tokens"  # per-report BM25 tokens: a rebuild after one report changed re-tokenizes only it


@dataclass
class LoadedIndex:
    paragraph_vectors: np.ndarray  # one row per passage, in flatten() order
    sentence_vectors: np.ndarray  # one row per sentence, passages in order, sentences in order
    sentence_owner: np.ndarray  # passage id of each sentence row
    first_sentence: np.ndarray  # row of each passage's first sentence (len = passages + 1)
    dense: DenseIndex  # over paragraph vectors
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
    for p in passages:
        for s in p.sentences:
            h.update(b"\x00")
            h.update(s.text.encode("utf-8"))
        h.update(b"\x01")
    return h.hexdigest()[:32]


def corpus_hash(keys: Sequence[str], passages: Sequence[Passage]) -> str:
    """Identity of the whole index: report keys plus what the lexical leg indexes."""
    h = hashlib.sha256("\n".join(keys).encode())
    for p in passages:
        h.update(p.indexed_text.encode("utf-8"))
    return h.hexdigest()[:32]


def plan(
    store: IndexStore, model_id: str, reports: Sequence[Report], passages: Sequence[Passage]
) -> tuple[list[str], IndexManifest | None]:
    """Per-report keys (corpus order) and the existing manifest if it belongs to this model/parser."""
    keys = [report_key(model_id, r, ps) for r, ps in zip(reports, _group(passages, len(reports)), strict=True)]
    manifest = store.read_manifest()
    if manifest and (manifest.model_id != model_id or manifest.parser_version != PARSER_VERSION):
        manifest = None
    return keys, manifest


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
) -> LoadedIndex:
    """Load the index, (re)building the parts that are missing, stale, truncated or corrupted."""
    with store.build_lock():
        keys, manifest = plan(store, embedder.model_id, reports, passages)
        if rebuild:
            manifest = None
        old = {e.key: e for e in manifest.reports} if manifest else {}
        checksums = manifest.checksums if manifest else {}
        grouped = _group(passages, len(reports))
        sentences_of = [[s.text for p in ps for s in p.sentences] for ps in grouped]

        per_report = [_load_vectors(store, old.get(k), checksums) for k in keys]
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
            corpus_hash=corpus_hash(keys, passages),
        )
        written = set(todo)
        for i, (report, key) in enumerate(zip(reports, keys, strict=True)):
            vecs = per_report[i]
            rel = f"vectors/{key}.npy"
            if i in written:
                new_manifest.checksums[rel] = store.write_file(rel, vectors_to_bytes(vecs))
            else:
                new_manifest.checksums[rel] = checksums[rel]
            new_manifest.reports.append(
                ReportEntry(report_id=report.meta.report_id, key=key, paragraphs=len(grouped[i]), vectors_file=rel)
            )

        lexical = None
        if not todo and manifest is not None and manifest.corpus_hash == new_manifest.corpus_hash:
            lexical = _load_lexical(store)
        if lexical is None or len(lexical) != len(passages):
            texts = [p.indexed_text for p in passages]
            lexical = LexicalIndex.build(texts, tokens=passage_tokens(store, grouped, passages))
            lexical.save(store.root / LEXICAL_DIR)

        if manifest is None or todo or manifest.corpus_hash != new_manifest.corpus_hash:
            store.write_manifest(new_manifest)
            store.remove_unlisted(new_manifest)
        else:
            new_manifest = manifest
        return assemble(per_report, passages, embedder.dim, lexical, new_manifest, store,
                        embedded=[reports[i].meta.report_id for i in todo])


def assemble(per_report, passages, dim, lexical, manifest, store, embedded) -> LoadedIndex:
    """Concatenate per-report sentence vectors, derive paragraph vectors, build the FAISS indexes."""
    arrays = [v for v in per_report if v is not None and len(v)]
    sent = np.concatenate(arrays, axis=0) if arrays else np.zeros((0, dim), dtype=np.float32)
    counts = np.array([len(p.sentences) for p in passages], dtype=np.int64)
    if sent.shape != (int(counts.sum()), dim):
        raise IndexStoreError(
            f"{store.root}: index holds {sent.shape[0]}×{sent.shape[1]} vectors for "
            f"{int(counts.sum())} sentences of dimension {dim}; run `reportqa index build` to rebuild"
        )
    first = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    owner = np.repeat(np.arange(len(passages), dtype=np.int64), counts)
    para = np.zeros((len(passages), dim), dtype=np.float32)
    if len(sent):
        para = np.add.reduceat(sent, first[:-1], axis=0).astype(np.float32)  # every passage has ≥ 1 sentence
        norms = np.linalg.norm(para, axis=1, keepdims=True)
        para /= np.maximum(norms, 1e-12)
    return LoadedIndex(
        paragraph_vectors=para,
        sentence_vectors=sent,
        sentence_owner=owner,
        first_sentence=first,
        dense=DenseIndex.build(para),
        sentence_dense=DenseIndex.build(sent),
        lexical=lexical,
        manifest=manifest,
        embedded=embedded,
    )


def passage_tokens(
    store: IndexStore, grouped: Sequence[Sequence[Passage]], passages: Sequence[Passage]
) -> list[list[str]]:
    """BM25 tokens of every passage (in passage order): per report from the token cache when its
    texts are unchanged — each cache file carries its own sha256 and is re-tokenized if it does not
    match — else tokenized now and cached. Files of reports no longer present are removed."""
    tokens_of: dict[int, list[str]] = {}
    keep: set[str] = set()
    for group in grouped:
        texts = [p.indexed_text for p in group]
        name = f"{_token_key(texts)}.json"
        keep.add(name)
        tokens = _read_tokens(store.root / TOKENS_DIR / name, len(texts))
        if tokens is None:
            tokens = [tokenize(t, DEFAULT_SCHEME) for t in texts]
            payload = json.dumps(tokens, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            with contextlib.suppress(OSError):  # a cache: the index is still right without it
                store.write_file(f"{TOKENS_DIR}/{name}", hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)
        for p, toks in zip(group, tokens, strict=True):
            tokens_of[id(p)] = toks
    directory = store.root / TOKENS_DIR
    if directory.is_dir():
        for path in directory.iterdir():
            if path.name not in keep and not path.name.startswith("."):
                with contextlib.suppress(OSError):
                    path.unlink()
    return [tokens_of[id(p)] for p in passages]


def _token_key(texts: Sequence[str]) -> str:
    h = hashlib.sha256(json.dumps([TOKENIZER_VERSION, DEFAULT_SCHEME]).encode())
    for text in texts:
        h.update(b"\x00")
        h.update(text.encode("utf-8"))
    return h.hexdigest()[:32]


def _read_tokens(path, n: int) -> list[list[str]] | None:
    try:
        raw = path.read_bytes()
        digest, _, payload = raw.partition(b"\n")
        if hashlib.sha256(payload).hexdigest().encode() != digest:
            return None
        tokens = json.loads(payload)
    except (OSError, ValueError):
        return None
    if not isinstance(tokens, list) or len(tokens) != n or not all(isinstance(t, list) for t in tokens):
        return None
    return tokens


def _load_lexical(store: IndexStore) -> LexicalIndex | None:
    try:
        return LexicalIndex.load(store.root / LEXICAL_DIR)
    except (IndexStoreError, OSError, ValueError):
        return None
