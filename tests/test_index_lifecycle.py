"""Index lifecycle: built once, reused, re-embedded per changed report, never trusted when damaged.

These tests count what reaches the embedder, so they use a small deterministic embedder (hashed
character bigrams) instead of the real model: what is under test is the index store, not meaning.
The real model's index is exercised by tests/test_retriever.py.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import LONGHUA_FILE, SEED_FILE

from retrieval.config import Settings
from retrieval.index_store import MANIFEST, IndexStore
from retrieval.indexing import DENSE_FILES
from retrieval.retriever import Retriever


class CountingHashEmbedder:
    """Bag of hashed character bigrams, L2-normalised; remembers every passage it was asked to encode."""

    dim = 64

    def __init__(self, model_id: str = "hash-bigram-64"):
        self.model_id = model_id
        self.encoded: list[str] = []

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        for a, b in zip(text, text[1:], strict=False):
            v[int(hashlib.md5((a + b).encode()).hexdigest(), 16) % self.dim] += 1
        n = np.linalg.norm(v)
        return v / n if n else v

    def encode_queries(self, texts):
        return np.stack([self._vec(t) for t in texts])

    def encode_passages(self, texts, *, progress=False):
        self.encoded.extend(texts)
        return np.stack([self._vec(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)


@pytest.fixture()
def corpus_dir(tmp_path: Path) -> Path:
    d = tmp_path / "corpus"
    d.mkdir()
    shutil.copy(SEED_FILE, d / "hengyang.txt")
    shutil.copy(LONGHUA_FILE, d / "longhua_2019.txt")
    return d


def open_retriever(corpus_dir: Path, home: Path, embedder, verify: bool = False) -> Retriever:
    from retrieval.corpus import load_corpus

    settings = Settings(corpus_dirs=(corpus_dir,), home=home)
    return Retriever.from_reports(load_corpus(settings.corpus_dirs), settings, embedder=embedder, verify=verify)


def test_built_once_then_reused(corpus_dir, tmp_path):
    home = tmp_path / "home"
    first = CountingHashEmbedder()
    r1 = open_retriever(corpus_dir, home, first)
    assert len(first.encoded) > 100
    assert (home / "index" / "corpus" / MANIFEST).exists()

    second = CountingHashEmbedder()
    r2 = open_retriever(corpus_dir, home, second)
    assert second.encoded == []
    q = "全市共调解矛盾纠纷多少件"
    assert [h.citation for h in r1.ask(q).hits] == [h.citation for h in r2.ask(q).hits]


def test_changed_report_reembeds_only_itself(corpus_dir, tmp_path):
    home = tmp_path / "home"
    open_retriever(corpus_dir, home, CountingHashEmbedder())
    seed = corpus_dir / "hengyang.txt"
    seed.write_text(seed.read_text(encoding="utf-8").replace("17076", "17077"), encoding="utf-8")

    again = CountingHashEmbedder()
    r = open_retriever(corpus_dir, home, again)
    assert again.encoded, "the changed report must be re-embedded"
    assert all("龙华" not in t for t in again.encoded), "the unchanged Longhua report must not be"
    assert "17077" in r.ask("调解矛盾纠纷多少件", reports=["hengyang"]).hits[0].text


def test_an_index_built_before_source_fingerprints_is_kept_and_gets_one(corpus_dir, tmp_path):
    """An older manifest (no source fingerprint) is current all the same: nothing is embedded, the
    keys are computed once and the fingerprint is noted (build time unchanged); a report that changes
    afterwards is still caught."""
    import json

    home = tmp_path / "home"
    open_retriever(corpus_dir, home, CountingHashEmbedder())
    path = home / "index" / "corpus" / MANIFEST
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data.pop("source_fingerprint")
    path.write_text(json.dumps(data), encoding="utf-8")

    again = CountingHashEmbedder()
    open_retriever(corpus_dir, home, again)
    noted = json.loads(path.read_text(encoding="utf-8"))
    assert again.encoded == [] and noted["source_fingerprint"] and noted["built_at"] == data["built_at"]

    seed = corpus_dir / "hengyang.txt"
    seed.write_text(seed.read_text(encoding="utf-8").replace("17076", "17077"), encoding="utf-8")
    changed = CountingHashEmbedder()
    r = open_retriever(corpus_dir, home, changed)
    assert changed.encoded and all("龙华" not in t for t in changed.encoded)
    assert "17077" in r.ask("调解矛盾纠纷多少件", reports=["hengyang"]).hits[0].text
    assert json.loads(path.read_text(encoding="utf-8"))["source_fingerprint"] != noted["source_fingerprint"]


def _damage(path, how: str) -> None:
    if how == "flip":
        data = bytearray(path.read_bytes())
        data[-10:] = b"\xff" * 10  # flip bytes inside the array
        path.write_bytes(bytes(data))
    else:
        path.write_bytes(path.read_bytes()[:100])  # truncate


def test_corrupted_vectors_are_rebuilt_not_trusted(corpus_dir, tmp_path):
    home = tmp_path / "home"
    before = open_retriever(corpus_dir, home, CountingHashEmbedder()).ask("调解矛盾纠纷")
    vec_files = sorted((home / "index" / "corpus" / "vectors").glob("*.npy"))
    assert len(vec_files) == 2
    _damage(vec_files[0], "flip")
    _damage(vec_files[1], "truncate")
    for rel in DENSE_FILES:
        _damage(home / "index" / "corpus" / rel, "flip")

    again = CountingHashEmbedder()
    r = open_retriever(corpus_dir, home, again)
    assert again.encoded, "damaged vector files must be re-embedded"
    assert [h.citation for h in r.ask("调解矛盾纠纷").hits] == [h.citation for h in before.hits]


@pytest.mark.parametrize("rel", DENSE_FILES)
def test_a_damaged_served_index_file_is_reassembled_without_embedding(corpus_dir, tmp_path, rel):
    home = tmp_path / "home"
    before = open_retriever(corpus_dir, home, CountingHashEmbedder()).ask("调解矛盾纠纷")
    _damage(home / "index" / "corpus" / rel, "flip")
    again = CountingHashEmbedder()
    r = open_retriever(corpus_dir, home, again)
    assert again.encoded == []  # the per-report vectors were intact: assembled again from them
    assert [(h.citation, round(h.score, 6)) for h in r.ask("调解矛盾纠纷").hits] == [
        (h.citation, round(h.score, 6)) for h in before.hits
    ]
    third = CountingHashEmbedder()
    open_retriever(corpus_dir, home, third)
    assert third.encoded == []


def _vectors_of(home: Path, report_id: str) -> Path:
    manifest = IndexStore(home / "index" / "corpus").read_manifest()
    return home / "index" / "corpus" / next(e.vectors_file for e in manifest.reports if e.report_id == report_id)


def test_damaged_per_report_vectors_are_caught_by_index_build_or_the_next_change(corpus_dir, tmp_path):
    """Only the assembled files serve questions; the per-report ones are checked when they are used."""
    home = tmp_path / "home"
    open_retriever(corpus_dir, home, CountingHashEmbedder())
    _damage(_vectors_of(home, "hengyang"), "flip")
    plain = CountingHashEmbedder()
    assert open_retriever(corpus_dir, home, plain).ask("调解矛盾纠纷").hits and plain.encoded == []
    checked = CountingHashEmbedder()
    open_retriever(corpus_dir, home, checked, verify=True)
    assert any("17076" in t for t in checked.encoded), "a verifying build must re-embed the damaged report"
    assert all("龙华" not in t for t in checked.encoded)

    # The next change takes the unchanged reports' vectors from the verified assembled file, not
    # from their own files: a damaged one waits for `index build` (or for the assembled file to be
    # damaged too, when everything is re-read).
    _damage(_vectors_of(home, "hengyang"), "truncate")
    other = corpus_dir / "longhua_2019.txt"  # the fixture's copy
    other.write_text(other.read_text(encoding="utf-8").replace("龙华区", "龙华区 "), encoding="utf-8")
    changed = CountingHashEmbedder()
    r = open_retriever(corpus_dir, home, changed)
    assert changed.encoded and all("17076" not in t for t in changed.encoded)  # only Longhua re-embedded
    assert "17076" in r.ask("调解矛盾纠纷多少件", reports=["hengyang"]).hits[0].text
    for rel in DENSE_FILES:
        _damage(home / "index" / "corpus" / rel, "flip")
    other.write_text(other.read_text(encoding="utf-8").replace("龙华区 ", "龙华区  "), encoding="utf-8")
    both = CountingHashEmbedder()
    open_retriever(corpus_dir, home, both)
    assert any("17076" in t for t in both.encoded), "with the assembled file damaged, every per-report file is read"


def test_after_a_change_unchanged_reports_come_from_the_assembled_file_unaltered(corpus_dir, tmp_path):
    import numpy as np

    from retrieval import indexing

    def hengyang_rows(retriever) -> np.ndarray:
        manifest = IndexStore(home / "index" / "corpus").read_manifest()
        start = 0
        for e in manifest.reports:
            if e.report_id == "hengyang":
                return np.array(retriever._index.sentence_vectors[start : start + e.sentences])
            start += e.sentences
        raise AssertionError("no hengyang entry")

    home = tmp_path / "home"
    first = open_retriever(corpus_dir, home, CountingHashEmbedder())
    q = "全市共调解矛盾纠纷多少件"
    expected = [h.citation for h in first.ask(q, reports=["hengyang"]).hits]
    before = hengyang_rows(first)
    read: list = []
    real = indexing._load_vectors
    indexing._load_vectors = lambda *a: (read.append(a), real(*a))[1]
    try:
        other = corpus_dir / "longhua_2019.txt"
        other.write_text(other.read_text(encoding="utf-8") + "\n\n附：本报告另有说明。\n", encoding="utf-8")
        changed = CountingHashEmbedder()
        r = open_retriever(corpus_dir, home, changed)
    finally:
        indexing._load_vectors = real
    assert read == [] and changed.encoded and all("17076" not in t for t in changed.encoded)
    assert len(before) > 50 and np.array_equal(hengyang_rows(r), before)  # the very same vectors
    assert [h.citation for h in r.ask(q, reports=["hengyang"]).hits] == expected


def test_garbage_manifest_rebuilds_everything(corpus_dir, tmp_path):
    home = tmp_path / "home"
    open_retriever(corpus_dir, home, CountingHashEmbedder())
    (home / "index" / "corpus" / MANIFEST).write_text("{not json", encoding="utf-8")
    again = CountingHashEmbedder()
    open_retriever(corpus_dir, home, again)
    assert len(again.encoded) > 100


def test_other_model_reembeds_everything(corpus_dir, tmp_path):
    home = tmp_path / "home"
    open_retriever(corpus_dir, home, CountingHashEmbedder("model-a"))
    other = CountingHashEmbedder("model-b")
    open_retriever(corpus_dir, home, other)
    assert len(other.encoded) > 100
    back = CountingHashEmbedder("model-b")
    open_retriever(corpus_dir, home, back)
    assert back.encoded == []


def test_damaged_lexical_index_is_rebuilt(corpus_dir, tmp_path):
    home = tmp_path / "home"
    open_retriever(corpus_dir, home, CountingHashEmbedder())
    lex_files = [p for p in (home / "index" / "corpus" / "lexical").rglob("*") if p.is_file()]
    assert lex_files
    for p in lex_files:
        p.write_bytes(b"garbage")
    r = open_retriever(corpus_dir, home, CountingHashEmbedder())
    assert r.ask("调解矛盾纠纷多少件", mode="lexical").hits[0].section_id == "7.1"


def test_removed_report_leaves_no_stale_vectors(corpus_dir, tmp_path):
    home = tmp_path / "home"
    open_retriever(corpus_dir, home, CountingHashEmbedder())
    (corpus_dir / "longhua_2019.txt").unlink()
    r = open_retriever(corpus_dir, home, CountingHashEmbedder())
    assert [m.report_id for m in r.reports] == ["hengyang"]
    assert len(list((home / "index" / "corpus" / "vectors").glob("*.npy"))) == 1


def _postings(lexical) -> dict[str, tuple]:
    p = lexical._postings
    indptr, indices, data = p.indptr, p.indices, p.data
    return {
        t: (tuple(indices[indptr[i] : indptr[i + 1]]), tuple(np.round(data[indptr[i] : indptr[i + 1]], 6)))
        for i, t in enumerate(p.tokens)
    }


def test_lexical_tokens_are_cached_per_report_and_a_damaged_cache_file_is_retokenized(
    corpus_dir, tmp_path, monkeypatch: pytest.MonkeyPatch
):
    from retrieval import lexical as lexical_module
    from retrieval.indexing import LEXICAL_DIR, TOKENS_DIR
    from retrieval.lexical import LexicalIndex

    home = tmp_path / "home"
    first = open_retriever(corpus_dir, home, CountingHashEmbedder())
    texts = [p.indexed_text for p in first._passages]
    reference = _postings(LexicalIndex.build(texts))  # tokenized from the texts, no cache
    assert _postings(first._index.lexical) == reference
    token_dir = home / "index" / "corpus" / TOKENS_DIR
    files = sorted(token_dir.glob("*.npz"))
    assert len(files) == 2  # one per report

    # Damage one report's cache file and force a lexical rebuild: only that report is tokenized again.
    damaged = files[0]
    damaged.write_bytes(damaged.read_bytes()[:-40] + b"\x00\x01")
    shutil.rmtree(home / "index" / "corpus" / LEXICAL_DIR)
    calls: list[str] = []
    real = lexical_module.tokenize

    def counting(text, scheme=lexical_module.DEFAULT_SCHEME):
        calls.append(text)
        return real(text, scheme)

    monkeypatch.setattr("retrieval.indexing.tokenize", counting)
    second = open_retriever(corpus_dir, home, CountingHashEmbedder())
    assert _postings(second._index.lexical) == reference
    n_first_report = len(second._passages) - len(calls)
    assert 0 < len(calls) < len(second._passages) and n_first_report > 0

    # A report that goes away takes its cache file with it.
    (corpus_dir / "longhua_2019.txt").unlink()
    open_retriever(corpus_dir, home, CountingHashEmbedder())
    assert len(list(token_dir.glob("*.npz"))) == 1


def test_removing_a_report_cuts_the_bm25_index_down_without_tokenizing_and_adding_one_rebuilds_it(
    corpus_dir, tmp_path, monkeypatch: pytest.MonkeyPatch
):
    from retrieval import lexical as lexical_module
    from retrieval.lexical import LexicalIndex

    home = tmp_path / "home"
    open_retriever(corpus_dir, home, CountingHashEmbedder())
    calls: list[str] = []
    real = lexical_module.tokenize
    monkeypatch.setattr("retrieval.indexing.tokenize", lambda text, scheme="bigram": calls.append(text) or real(text))

    (corpus_dir / "longhua_2019.txt").unlink()
    after_remove = open_retriever(corpus_dir, home, CountingHashEmbedder())
    assert calls == []  # cut down from the saved index, no report tokenized
    fresh = LexicalIndex.build([p.indexed_text for p in after_remove._passages])
    assert _postings(after_remove._index.lexical) == _postings(fresh)
    assert after_remove.ask("调解矛盾纠纷多少件", mode="lexical").hits[0].section_id == "7.1"

    shutil.copy(LONGHUA_FILE, corpus_dir / "longhua_2019.txt")  # added back: computed from tokens again
    after_add = open_retriever(corpus_dir, home, CountingHashEmbedder())
    assert 0 < len(calls) < len(after_add._passages)  # only the new report tokenized
    assert _postings(after_add._index.lexical) == _postings(
        LexicalIndex.build([p.indexed_text for p in after_add._passages]))


def test_a_loaded_corpus_holds_no_reference_cycles(corpus_dir, tmp_path):
    """Retriever.open freezes the loaded corpus out of the cyclic collector; that is only safe (a
    replaced retriever is still freed) while reports and passages form no reference cycles."""
    import gc

    from retrieval.corpus import load_corpus
    from retrieval.passages import flatten

    settings = Settings(corpus_dirs=(corpus_dir,), home=tmp_path / "home")
    for _ in range(2):  # parsed, then from the parse cache
        gc.collect()
        reports = load_corpus(settings.corpus_dirs, parsed_cache=settings.parsed_cache_dir)
        passages = flatten(reports)
        assert passages and all(p.indexed_text for p in passages)
        del reports, passages
        assert gc.collect() == 0


def test_opening_an_unchanged_index_reads_only_what_serves_and_imports_no_bm25s(corpus_dir, tmp_path):
    """The cold-start path: parsed reports from the cache (the parser not even imported), report keys
    from the manifest (no sentence hashed), FAISS files memory-mapped, BM25 postings mapped without
    bm25s/scipy, no per-report vector file opened, nothing embedded."""
    import subprocess
    import sys

    home = tmp_path / "home"
    Retriever.open(Settings(corpus_dirs=(corpus_dir,), home=home), embedder=CountingHashEmbedder())
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from pathlib import Path\n"
        "from test_index_lifecycle import CountingHashEmbedder\n"
        "from retrieval import indexing\n"
        "from retrieval.config import Settings\n"
        "from retrieval.retriever import Retriever\n"
        "read = []\n"
        "real = indexing._load_vectors\n"
        "indexing._load_vectors = lambda *a: (read.append(a), real(*a))[1]\n"
        "keyed = []\n"
        "real_key = indexing.report_key\n"
        "indexing.report_key = lambda *a: (keyed.append(a), real_key(*a))[1]\n"
        "emb = CountingHashEmbedder()\n"
        f"settings = Settings(corpus_dirs=(Path({str(corpus_dir)!r}),), home=Path({str(home)!r}))\n"
        f"r = Retriever.open(settings, embedder=emb, verify={{verify}})\n"
        "hit = r.ask('调解矛盾纠纷多少件', mode='lexical').hits[0]\n"
        "print(hit.section_id, len(emb.encoded), len(read), len(keyed),\n"
        "      [m for m in ('bm25s', 'scipy', 'retrieval.parse') if m in sys.modules])\n"
    )
    for verify, expected in ((False, "7.1 0 0 0 []"), (True, "7.1 0 2 0 []")):  # index build reads both reports'
        out = subprocess.run([sys.executable, "-c", code.replace("{verify}", str(verify))], capture_output=True,
                             text=True, timeout=120, check=True)
        assert out.stdout.split("\n")[-2] == expected, out.stdout + out.stderr


# --- the index as a read-only artifact (replicas) ------------------------------------------


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


def _open_readonly(corpus_dir: Path, home: Path, embedder) -> Retriever:
    from dataclasses import replace

    from retrieval.corpus import load_corpus

    settings = replace(Settings(corpus_dirs=(corpus_dir,), home=home), index_readonly=True)
    return Retriever.from_reports(load_corpus(settings.corpus_dirs), settings, embedder=embedder)


def test_a_read_only_index_serves_without_writing_locking_or_embedding(corpus_dir, tmp_path):
    home = tmp_path / "home"
    built = open_retriever(corpus_dir, home, CountingHashEmbedder())
    root = home / "index" / "corpus"
    before = _snapshot(root)
    reader = CountingHashEmbedder()
    r = _open_readonly(corpus_dir, home, reader)
    q = "全市共调解矛盾纠纷多少件"
    assert reader.encoded == [] and [h.citation for h in r.ask(q).hits] == [h.citation for h in built.ask(q).hits]
    assert _snapshot(root) == before  # not a byte written, no lock file made


def test_a_read_only_index_refuses_a_changed_corpus_a_missing_index_and_damage(corpus_dir, tmp_path):
    from retrieval.errors import IndexStoreError

    home = tmp_path / "home"
    with pytest.raises(IndexStoreError, match=r"none built .*run `reportqa index build`"):
        _open_readonly(corpus_dir, home, CountingHashEmbedder())
    assert not (home / "index" / "corpus" / MANIFEST).exists()
    open_retriever(corpus_dir, home, CountingHashEmbedder())
    root = home / "index" / "corpus"
    seed = corpus_dir / "hengyang.txt"
    original = seed.read_text(encoding="utf-8")
    seed.write_text(original.replace("17076", "17077"), encoding="utf-8")
    before = _snapshot(root)
    stale = r"stale for this corpus \(1 report\(s\) new or changed, e\.g\. hengyang\)"
    with pytest.raises(IndexStoreError, match=stale):
        _open_readonly(corpus_dir, home, CountingHashEmbedder())
    assert _snapshot(root) == before
    seed.write_text(original, encoding="utf-8")
    served = root / "dense" / "sentences.faiss"
    data = bytearray(served.read_bytes())
    data[-5] ^= 0xFF
    served.write_bytes(bytes(data))
    with pytest.raises(IndexStoreError, match=r"damaged .*run `reportqa index build`"):
        _open_readonly(corpus_dir, home, CountingHashEmbedder())
    assert served.read_bytes() == bytes(data)  # left as found: repairing is `index build`'s job
