"""The lexical leg: BM25 (bm25s) over report paragraphs with Chinese-aware tokens.

Tokens (see `tokenize`), after `fold_for_match` (traditional → simplified, full-width → half-width)
and lower-casing:
- Chinese runs → split at question words (什么, 多少 …, see QUESTION_WORDS), then character
  bigrams plus unigrams. Measured on CMRC2018 dev (scripts/bench_lexical.py) against bigrams
  alone, jieba words and bigrams + jieba: unigrams + bigrams are best (R@1 0.976 vs 0.971 / 0.966
  / 0.973) and need no dictionary load. The other schemes stay selectable for the bench.
- numbers → one whole token each ("17076", "99.17", "1,234" → "1234"), never split into pieces,
  so a question quoting a figure lands on the paragraph that has exactly that figure;
- quoted names 《…》 “…” "…" 「…」 『…』 → one extra token for the whole quoted text;
- other words (English, pinyin, codes like "5g") → lower-cased whole words, English stopwords dropped;
- punctuation and symbols → nothing.

`LexicalIndex` keeps the BM25 postings (computed by bm25s) plus the tokenizer scheme it was built with; it saves to a
directory with a manifest of SHA-256 checksums so a truncated or altered file is detected on load
(`IndexStoreError`) instead of silently giving wrong rankings.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from retrieval.bm25 import Postings, bm25s_postings, lucene_postings, restricted
from retrieval.errors import IndexStoreError
from retrieval.normalize import fold_for_match

SCHEMES = ("bigram", "unibigram", "jieba", "bigram+jieba")
# Bigrams, not unigrams + bigrams: on CMRC2018 unibigram is slightly ahead (R@1 0.976 vs 0.971), but on our
# own report questions (tune half, hybrid) bigrams won: Hengyang top-1 0.951 vs 0.967, Longhua 0.882 vs 0.794 —
# single characters like 区/市/政 match everywhere in government reports.
DEFAULT_SCHEME = "bigram"
# BM25 parameters picked on CMRC2018 dev (scripts/bench_lexical.py --sweep): the whole grid
# k1 0.9–2.0 × b 0.3–0.9 × lucene/robertson/bm25+ lies within R@1 0.972–0.977, so the choice matters little.
DEFAULT_K1 = 1.2
DEFAULT_B = 0.5
DEFAULT_METHOD = "lucene"
# Bump when tokenization changes: an index built with other tokens must be rebuilt, not trusted.
TOKENIZER_VERSION = 2
MANIFEST_NAME = "lexical.json"
MANIFEST_FORMAT = 3  # 2: own posting files (sorted vocabulary), loaded without bm25s; 3: + term counts, groups
READABLE_FORMATS = (2, 3)

_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_TOKEN_RE = re.compile(
    rf"(?P<han>[{_HAN}]+)"
    r"|(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?(?!\d)|\d+\.\d+)"
    rf"|(?P<word>[^\W_{_HAN}]+)"
)
_QUOTED_RE = re.compile(
    r"《([^《》]{1,60})》|“([^“”]{1,60})”|\"([^\"]{1,60})\"|「([^「」]{1,60})」|『([^『』]{1,60})』"
)
# Question framing (什么, 多少, 有没有 …) is never what a report paragraph is about, yet it is rare in
# report text, so BM25 would give it a high weight and reward the odd paragraph that happens to
# contain it. Chinese runs are split at these words on both sides before n-grams are taken.
# Measured on CMRC2018 dev: R@1 0.961 → 0.971 (bigrams), 0.967 → 0.976 (unigrams + bigrams).
# Words that are also parts of content words (吧 in 网吧, 了 in 了解, 的 in 目的) are left out.
QUESTION_WORDS = (
    "什么", "为什么", "怎么样", "怎么", "怎样", "如何", "哪些", "哪个", "哪里", "哪儿", "哪", "多少",
    "是否", "有没有", "是不是", "能不能", "请问", "谁", "何时", "吗", "呢", "呀", "啊",
)
_QUESTION_WORD_RE = re.compile("|".join(sorted(map(re.escape, QUESTION_WORDS), key=len, reverse=True)))
_QUOTED_PREFIX = "q:"  # quoted-name tokens live apart from n-grams so they only match quoted names
_JIEBA_PREFIX = "w:"  # in "bigram+jieba", jieba words are counted apart from the bigrams


@lru_cache(maxsize=1)
def _english_stopwords() -> frozenset[str]:
    """bm25s's English stopwords, read from its module file: importing `bm25s.stopwords` would run
    bm25s/__init__ (scipy and all, 0.1–0.2 s) on the query path, which needs only this list."""
    import importlib.util

    spec = importlib.util.find_spec("bm25s")
    origin = Path(next(iter(spec.submodule_search_locations))) / "stopwords.py"
    module = importlib.util.module_from_spec(importlib.util.spec_from_file_location("_bm25s_stopwords", origin))
    module.__spec__.loader.exec_module(module)
    return frozenset(module.STOPWORDS_EN_PLUS)


_jieba_lock = threading.Lock()
_jieba_tokenizer = None


def _jieba():
    """jieba's dictionary takes ~0.6 s to load; only the jieba schemes pay for it (once, thread-safe)."""
    global _jieba_tokenizer
    if _jieba_tokenizer is None:
        with _jieba_lock:
            if _jieba_tokenizer is None:
                import logging

                import jieba

                jieba.setLogLevel(logging.WARNING)
                tokenizer = jieba.Tokenizer()
                tokenizer.initialize()
                _jieba_tokenizer = tokenizer
    return _jieba_tokenizer


def _han_tokens(run: str, scheme: str) -> list[str]:
    if scheme == "jieba":
        return [w for w in _jieba().lcut_for_search(run) if w]
    if len(run) == 1:
        grams = [run]
    else:
        grams = [run[i : i + 2] for i in range(len(run) - 1)]
        if scheme == "unibigram":
            grams.extend(run)
    if scheme == "bigram+jieba":
        grams.extend(_JIEBA_PREFIX + w for w in _jieba().lcut_for_search(run) if w)
    return grams


def tokenize(text: str, scheme: str = DEFAULT_SCHEME) -> list[str]:
    """BM25 tokens of a question or paragraph (same function for both sides)."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown tokenizer scheme {scheme!r}; choose from {', '.join(SCHEMES)}")
    folded = fold_for_match(text).lower()
    stopwords = _english_stopwords()
    tokens: list[str] = []
    for match in _TOKEN_RE.finditer(folded):
        kind = match.lastgroup
        piece = match.group()
        if kind == "han":
            for run in _QUESTION_WORD_RE.split(piece):
                if run:
                    tokens.extend(_han_tokens(run, scheme))
        elif kind == "num":
            tokens.append(piece.replace(",", ""))
        elif piece not in stopwords:
            tokens.append(piece)
    for match in _QUOTED_RE.finditer(folded):
        name = "".join(next(g for g in match.groups() if g is not None).split())
        if name:
            tokens.append(_QUOTED_PREFIX + name)
    return tokens


def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


POSTING_FILES = ("indptr.npy", "indices.npy", "data.npy")
COUNT_FILES = ("tf.npy", "lengths.npy")  # format 3: raw counts, so `restricted_to` needs no re-tokenizing
VOCAB_FILE = "vocab.txt"


@dataclass
class LexicalIndex:
    """BM25 over a fixed list of texts; document ids are positions in that list."""

    n_docs: int
    scheme: str
    k1: float
    b: float
    method: str
    _postings: Postings | None = field(repr=False)  # None when no document has a token
    # Consecutive runs of documents by what they came from (a report's token key, its document
    # count), so the index can be cut down to fewer reports (`restricted_to`); () when unknown.
    groups: tuple[tuple[str, int], ...] = ()

    @classmethod
    def build(
        cls,
        texts: Sequence[str],
        *,
        scheme: str = DEFAULT_SCHEME,
        k1: float = DEFAULT_K1,
        b: float = DEFAULT_B,
        method: str = DEFAULT_METHOD,
        tokens: Sequence[list[str]] | None = None,
        groups: Sequence[tuple[str, int]] = (),
    ) -> LexicalIndex:
        """Tokenize and index `texts` (paragraphs); id i in search results is texts[i].

        tokens: `tokenize(text, scheme)` of every text, already known (a cache of unchanged reports);
        groups: see `LexicalIndex.groups`.
        See `build_from_ids` for how the scores are computed.
        """
        corpus_tokens = list(tokens) if tokens is not None else [tokenize(text, scheme) for text in texts]
        if len(corpus_tokens) != len(texts):
            raise ValueError(f"{len(corpus_tokens)} token lists for {len(texts)} texts")
        vocab: dict[str, int] = {}
        docs = [[vocab.setdefault(t, len(vocab)) for t in doc] for doc in corpus_tokens]
        offsets = np.zeros(len(docs) + 1, dtype=np.int64)
        np.cumsum([len(d) for d in docs], out=offsets[1:])
        ids = np.fromiter((i for d in docs for i in d), dtype=np.int64, count=int(offsets[-1]))
        return cls.build_from_ids(list(vocab), ids, offsets, scheme=scheme, k1=k1, b=b, method=method, groups=groups)

    @classmethod
    def build_from_ids(
        cls,
        vocab: Sequence[str],
        ids: np.ndarray,
        offsets: np.ndarray,
        *,
        scheme: str = DEFAULT_SCHEME,
        k1: float = DEFAULT_K1,
        b: float = DEFAULT_B,
        method: str = DEFAULT_METHOD,
        groups: Sequence[tuple[str, int]] = (),
    ) -> LexicalIndex:
        """Index documents given as token ids into `vocab` (distinct tokens of `scheme`): document i
        holds ids[offsets[i]:offsets[i + 1]]. groups: see `LexicalIndex.groups`.

        The default Lucene BM25 is computed here with numpy, to the same numbers as bm25s (a test
        compares them): bm25s wants Python lists of ids and counts per document in Python, 2–3× the
        time on a 150-report library. The other variants (for `scripts/bench_lexical.py`) go to bm25s.
        """
        n_docs = len(offsets) - 1
        groups = tuple((str(key), int(n)) for key, n in groups)
        if groups and sum(n for _, n in groups) != n_docs:
            raise ValueError(f"groups hold {sum(n for _, n in groups)} documents, not {n_docs}")
        if len(ids) == 0:
            return cls(n_docs=n_docs, scheme=scheme, k1=k1, b=b, method=method, _postings=None, groups=groups)
        tokens = sorted(vocab)
        sorted_ids = np.asarray(ids, dtype=np.int64)
        if tokens != list(vocab):  # Postings want ids in sorted-token order
            position = {t: i for i, t in enumerate(tokens)}.__getitem__
            sorted_ids = np.fromiter(map(position, vocab), dtype=np.int64, count=len(vocab))[sorted_ids]
        if method == "lucene":
            postings = lucene_postings(tokens, sorted_ids, np.asarray(offsets, dtype=np.int64), k1, b)
        else:
            postings = bm25s_postings(tokens, sorted_ids, offsets, k1, b, method)
        return cls(n_docs=n_docs, scheme=scheme, k1=k1, b=b, method=method, _postings=postings, groups=groups)

    def restricted_to(self, keys: Sequence[str]) -> LexicalIndex | None:
        """The index of only the groups named by `keys` (in this index's order, each at most as often
        as here) — as `build_from_ids` would give it from their tokens: after reports were removed from
        a library, no report is read or tokenized again. None when that cannot be done (`keys` is not
        a sub-sequence of the groups, no groups or term counts are known); then rebuild."""
        if not self.groups:
            return None
        keep = np.zeros(self.n_docs, dtype=bool)
        kept: list[tuple[str, int]] = []
        start = 0
        for key, n in self.groups:
            if len(kept) < len(keys) and keys[len(kept)] == key:
                keep[start : start + n] = True
                kept.append((key, n))
            start += n
        if len(kept) != len(keys):
            return None
        groups = tuple(kept)
        n_docs = int(keep.sum())
        if self._postings is None or n_docs == 0:
            return LexicalIndex(n_docs=n_docs, scheme=self.scheme, k1=self.k1, b=self.b, method=self.method,
                                _postings=None, groups=groups)
        if self.method != "lucene":
            return None
        postings = restricted(self._postings, keep, self.k1, self.b)
        if postings is None:
            return None
        if len(postings.indices) == 0:
            postings = None
        return LexicalIndex(n_docs=n_docs, scheme=self.scheme, k1=self.k1, b=self.b, method=self.method,
                            _postings=postings, groups=groups)

    def __len__(self) -> int:
        return self.n_docs

    def has_token(self, token: str) -> bool:
        """Whether any document has this token."""
        return self.document_frequency(token) > 0

    def document_frequency(self, token: str) -> int:
        """Number of documents the token occurs in (for IDF weights outside BM25)."""
        if self._postings is None:
            return 0
        i = self._postings.token_id(token)
        return 0 if i is None else int(self._postings.indptr[i + 1] - self._postings.indptr[i])

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every document for `query` (0 where no token is shared)."""
        scores = np.zeros(self.n_docs, dtype=np.float32)
        p = self._postings
        if p is None:
            return scores
        token_ids = [i for t in tokenize(query, self.scheme) if (i := p.token_id(t)) is not None]
        if not token_ids:
            return scores
        # One bincount over all posting lists is several times faster than bm25s's per-token add.at.
        # (bm25l/bm25+ would add a per-query constant for absent terms; it cannot change the ranking.)
        ids = np.asarray(token_ids, dtype=np.int64)
        starts, ends = p.indptr[ids], p.indptr[ids + 1]
        postings = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends, strict=True)])
        if postings.size:
            scores += np.bincount(p.indices[postings], weights=p.data[postings], minlength=self.n_docs).astype(
                np.float32
            )
        return scores

    def search(
        self, query: str, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k document ids and scores, best first; only documents sharing a token with the query.

        `allowed` is an optional boolean mask over documents (e.g. the user's report filter);
        documents outside it are never returned. Ties are broken by lower id.
        """
        if allowed is not None:
            allowed = np.asarray(allowed, dtype=bool)
            if allowed.shape != (self.n_docs,):
                raise ValueError(f"allowed mask has shape {allowed.shape}, index has {self.n_docs} documents")
        scores = self.scores(query)
        candidates = scores > 0
        if allowed is not None:
            candidates &= allowed
        candidate_ids = np.flatnonzero(candidates)
        if k <= 0 or candidate_ids.size == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        candidate_scores = scores[candidate_ids]
        if candidate_ids.size > k:
            top = np.argpartition(-candidate_scores, k - 1)[:k]
            # argpartition may cut a tie at the k-th score arbitrarily; keep every tied doc, then sort.
            kth = candidate_scores[top].min()
            top = np.flatnonzero(candidate_scores >= kth)
            candidate_ids, candidate_scores = candidate_ids[top], candidate_scores[top]
        order = np.lexsort((candidate_ids, -candidate_scores))[:k]
        return candidate_ids[order].astype(np.int64), candidate_scores[order]

    def save(self, directory: str | os.PathLike[str]) -> None:
        """Write the index to `directory`, replacing it as a whole (temp directory + rename).

        A crash while saving leaves the previous index or none, never a half-written one that loads.
        """
        target = Path(directory)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
            try:
                if self._postings is not None:
                    p = self._postings
                    for name, array in zip(POSTING_FILES, (p.indptr, p.indices, p.data), strict=True):
                        np.save(staging / name, array, allow_pickle=False)
                    if p.tf is not None and p.lengths is not None:
                        for name, array in zip(COUNT_FILES, (p.tf, p.lengths), strict=True):
                            np.save(staging / name, array, allow_pickle=False)
                    # No token holds a line break (tokens are runs of letters, digits or a quoted name ≤ 60).
                    (staging / VOCAB_FILE).write_text("\n".join(p.tokens), encoding="utf-8")
                files = {p.name: _sha256(p) for p in sorted(staging.iterdir()) if p.is_file()}
                for name in files:
                    with open(staging / name, "rb") as handle:
                        os.fsync(handle.fileno())
                manifest = {
                    "format": MANIFEST_FORMAT,
                    "tokenizer_version": TOKENIZER_VERSION,
                    "scheme": self.scheme,
                    "n_docs": self.n_docs,
                    "k1": self.k1,
                    "b": self.b,
                    "method": self.method,
                    "files": files,
                    "groups": [list(g) for g in self.groups],
                }
                manifest_path = staging / MANIFEST_NAME
                manifest_path.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
                with open(manifest_path, "rb") as handle:
                    os.fsync(handle.fileno())
                _swap_directory(staging, target)
            finally:
                if staging.exists():
                    shutil.rmtree(staging, ignore_errors=True)
        except OSError as exc:
            reason = exc.strerror or exc
            raise IndexStoreError(f"cannot write the lexical index to {target}: {reason}") from exc

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> LexicalIndex:
        """Read an index saved by `save`; IndexStoreError if anything is missing, altered or stale.

        The posting arrays are memory-mapped (after their checksums matched), not read into memory.
        """
        source = Path(directory)
        manifest = _read_manifest(source)
        groups = tuple((key, n) for key, n in manifest.get("groups", []))
        for name, digest in manifest["files"].items():
            path = source / name
            if not path.is_file():
                raise IndexStoreError(f"lexical index file {path} is missing; rebuild the index")
            try:
                if _sha256(path) != digest:
                    raise IndexStoreError(
                        f"lexical index file {path} is corrupt (checksum mismatch); rebuild the index"
                    )
            except OSError as exc:
                reason = exc.strerror or exc
                raise IndexStoreError(f"cannot read lexical index file {path}: {reason}") from exc
        postings = None
        if manifest["files"]:
            if set(manifest["files"]) not in ({*POSTING_FILES, VOCAB_FILE}, {*POSTING_FILES, *COUNT_FILES, VOCAB_FILE}):
                raise IndexStoreError(f"lexical index in {source} lists other files; rebuild the index")
            try:
                indptr, indices, data = (np.load(source / name, mmap_mode="r", allow_pickle=False)
                                         for name in POSTING_FILES)
                tokens = (source / VOCAB_FILE).read_text(encoding="utf-8").split("\n")
            except (OSError, ValueError, UnicodeDecodeError) as exc:  # checksums matched: a format problem
                raise IndexStoreError(f"cannot load the lexical index in {source}: {exc}") from exc
            n_docs = manifest["n_docs"]
            if (
                indptr.ndim != 1 or len(indptr) != len(tokens) + 1 or indptr[0] != 0
                or indptr[-1] != len(indices) or len(data) != len(indices)
                or (len(indices) and not 0 <= int(indices.min()) <= int(indices.max()) < n_docs)
                or indices.dtype != np.int32 or data.dtype != np.float32 or indptr.dtype != np.int64
            ):
                raise IndexStoreError(f"lexical index in {source} is inconsistent; rebuild the index")
            tf = lengths = None
            if COUNT_FILES[0] in manifest["files"]:
                try:
                    tf, lengths = (np.load(source / name, mmap_mode="r", allow_pickle=False) for name in COUNT_FILES)
                except (OSError, ValueError) as exc:
                    raise IndexStoreError(f"cannot load the lexical index in {source}: {exc}") from exc
                if (
                    tf.shape != indices.shape or tf.dtype not in (np.uint16, np.int32)
                    or lengths.shape != (n_docs,) or lengths.dtype != np.int64
                ):
                    raise IndexStoreError(f"lexical index in {source} is inconsistent; rebuild the index")
            postings = Postings(tokens, indptr, indices, data, tf, lengths)
        return cls(
            n_docs=manifest["n_docs"],
            scheme=manifest["scheme"],
            k1=manifest["k1"],
            b=manifest["b"],
            method=manifest["method"],
            _postings=postings,
            groups=groups,
        )


def _read_manifest(source: Path) -> dict:
    path = source / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise IndexStoreError(f"no lexical index in {source} ({MANIFEST_NAME} missing)") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexStoreError(
            f"lexical index manifest {path} is unreadable or corrupt; rebuild the index"
        ) from exc
    expected = {
        "format": int,
        "tokenizer_version": int,
        "scheme": str,
        "n_docs": int,
        "k1": (int, float),
        "b": (int, float),
        "method": str,
        "files": dict,
    }
    if not isinstance(manifest, dict) or any(
        not isinstance(manifest.get(key), kind) for key, kind in expected.items()
    ):
        raise IndexStoreError(f"lexical index manifest {path} is malformed; rebuild the index")
    groups = manifest.get("groups", [])
    if not isinstance(groups, list) or any(
        not (isinstance(g, list) and len(g) == 2 and isinstance(g[0], str) and isinstance(g[1], int) and g[1] >= 0)
        for g in groups
    ) or (groups and sum(g[1] for g in groups) != manifest.get("n_docs")):
        raise IndexStoreError(f"lexical index manifest {path} is malformed; rebuild the index")
    if manifest["format"] not in READABLE_FORMATS or manifest["tokenizer_version"] != TOKENIZER_VERSION:
        raise IndexStoreError(f"lexical index in {source} was built by another version; rebuild the index")
    if manifest["n_docs"] < 0 or manifest["scheme"] not in SCHEMES:
        raise IndexStoreError(f"lexical index in {source} uses unknown tokenizer {manifest['scheme']!r}")
    if any(Path(name).name != name or name == MANIFEST_NAME for name in manifest["files"]):
        raise IndexStoreError(f"lexical index manifest {path} names unexpected files; rebuild the index")
    return manifest


def _swap_directory(staging: Path, target: Path) -> None:
    """Put `staging` at `target`; an existing `target` is moved aside first and removed after."""
    if not target.exists():
        os.replace(staging, target)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.rmdir(retired)
    os.replace(target, retired)
    try:
        os.replace(staging, target)
    except OSError:
        os.replace(retired, target)
        raise
    shutil.rmtree(retired, ignore_errors=True)
