"""The BM25 leg: Chinese tokens, exact numbers and quoted names, report filter, persistence."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from conftest import REPO, SEED_FILE

from retrieval.errors import IndexStoreError
from retrieval.lexical import DEFAULT_SCHEME, MANIFEST_NAME, SCHEMES, LexicalIndex, tokenize

SEED_LINES = (line.strip() for line in SEED_FILE.read_text(encoding="utf-8").splitlines())
SEED_PARAGRAPHS = [line for line in SEED_LINES if line]


def paragraph_with(fragment: str) -> int:
    (index,) = [i for i, p in enumerate(SEED_PARAGRAPHS) if fragment in p]
    return index


@pytest.fixture(scope="module")
def seed_index() -> LexicalIndex:
    return LexicalIndex.build(SEED_PARAGRAPHS)


# --- tokens ---------------------------------------------------------------------------------


def test_numbers_are_whole_tokens_never_pieces():
    tokens = tokenize("2019年,全市共调解矛盾纠纷17076件,参考率99.17%,共1,234人")
    assert {"2019", "17076", "99.17", "1234"} <= set(tokens)
    assert not {"1707", "7076", "99", "17", "201"} & set(tokens)


def test_chinese_text_gives_character_bigrams():
    tokens = tokenize("调解矛盾纠纷")
    assert {"调解", "矛盾", "纠纷"} <= set(tokens)


def test_quoted_names_get_a_whole_token():
    doc = tokenize("全面落实《法治政府建设实施纲要(2015—2020年)》和“最多跑一次”改革")
    question = tokenize("“最多跑一次”改革怎么样")
    shared = set(doc) & set(question)
    assert any("最多跑一次" in token and len(token) > 5 for token in shared)
    assert any("法治政府建设实施纲要(2015—2020年)" in token for token in doc)


def test_punctuation_gives_no_tokens():
    assert tokenize("，。、《》“”？！()：;---…") == []


def test_english_words_are_lowercased_whole_words_without_stopwords():
    tokens = tokenize("How many Disputes were MEDIATED in the 5G era?")
    assert tokens == ["many", "disputes", "mediated", "5g", "era"]


def test_traditional_and_full_width_text_tokenize_like_simplified():
    assert tokenize("調解矛盾糾紛１７０７６件") == tokenize("调解矛盾纠纷17076件")


def test_unknown_scheme_is_rejected():
    with pytest.raises(ValueError, match="scheme"):
        tokenize("法治", scheme="trigram")


# --- search on the seed report --------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "fragment"),
    [
        ("17076", "17076件"),
        ("哪里提到了104件", "规范性文件104件"),
        ("审结了133件是什么案件", "审结133件"),
        ("参考率99.17%是指什么考试", "参考率99.17%"),
    ],
)
def test_number_question_lands_on_the_paragraph_with_that_number(seed_index, question, fragment):
    ids, scores = seed_index.search(question, 3)
    assert ids[0] == paragraph_with(fragment)
    assert scores[0] > scores[1] if len(scores) > 1 else True


def test_question_words_do_not_pull_in_a_paragraph_that_merely_contains_them():
    distractor = "市民最关心什么?有多少人满意?怎么办理?"
    index = LexicalIndex.build([*SEED_PARAGRAPHS, distractor])
    ids, _ = index.search("怎么办理行政复议", 3)
    assert ids[0] == paragraph_with("行政复议申请64件")
    ids, _ = index.search("法律顾问是什么", 10)
    assert ids[0] == paragraph_with("充分发挥法律顾问作用")
    assert len(SEED_PARAGRAPHS) not in ids.tolist()
    assert not {"什么", "什", "多少", "少"} & set(tokenize("法律顾问是什么?出具了多少份意见"))


def test_a_number_does_not_match_a_longer_number(seed_index):
    ids, _ = seed_index.search("13", 10)
    assert paragraph_with("审结133件") not in ids.tolist()
    assert paragraph_with("市直部门规范性文件13件") in ids.tolist()


def test_citizen_question_finds_the_section(seed_index):
    ids, _ = seed_index.search("市政府的法律顾问出具了多少份书面咨询意见", 3)
    assert ids[0] == paragraph_with("充分发挥法律顾问作用")


def test_traditional_question_finds_the_same_paragraph(seed_index):
    simplified, _ = seed_index.search("市政府的法律顾问出具了多少份书面咨询意见", 3)
    traditional, _ = seed_index.search("市政府的法律顧問出具了多少份書面諮詢意見", 3)
    assert traditional[0] == simplified[0]


def test_results_are_ranked_and_only_share_a_token(seed_index):
    ids, scores = seed_index.search("行政复议", 100)
    assert len(ids) == len(scores) and len(ids) < len(SEED_PARAGRAPHS)
    assert np.all(np.diff(scores) <= 0) and np.all(scores > 0)
    assert all(any(ch in SEED_PARAGRAPHS[i] for ch in "行政复议") for i in ids)
    assert paragraph_with("字体") not in ids.tolist()


def test_document_frequencies_count_paragraphs_not_occurrences(seed_index):
    df = seed_index.document_frequency
    assert df("调解") == sum("调解" in p for p in SEED_PARAGRAPHS)
    assert df("17076") == 1
    assert df("") == 0 and df("zzzqqq") == 0 and df("\uffff") == 0
    assert seed_index.has_token("调解") and not seed_index.has_token("zzzqqq")


def test_question_with_no_known_token_gives_nothing(seed_index):
    ids, scores = seed_index.search("¿¡ zzzqqq", 5)
    assert ids.size == 0 and scores.size == 0
    assert seed_index.search("", 5)[0].size == 0


def test_allowed_mask_keeps_out_other_documents(seed_index):
    best = paragraph_with("17076件")
    allowed = np.ones(len(seed_index), dtype=bool)
    allowed[best] = False
    ids, _ = seed_index.search("全市共调解矛盾纠纷17076件", 5, allowed=allowed)
    assert best not in ids.tolist() and len(ids) > 0
    assert all(allowed[i] for i in ids)
    only = np.zeros(len(seed_index), dtype=bool)
    only[[best, 0]] = True
    ids, _ = seed_index.search("全市共调解矛盾纠纷17076件", 5, allowed=only)
    assert ids.tolist() == [best]


def test_allowed_mask_of_the_wrong_length_is_an_error(seed_index):
    with pytest.raises(ValueError, match="mask"):
        seed_index.search("调解", 3, allowed=np.ones(3, dtype=bool))


def test_every_scheme_finds_the_number_paragraph():
    for scheme in SCHEMES:
        index = LexicalIndex.build(SEED_PARAGRAPHS, scheme=scheme)
        assert index.search("2019年全市共调解矛盾纠纷多少件", 1)[0][0] == paragraph_with("17076件"), scheme


# --- persistence ----------------------------------------------------------------------------


def test_save_load_round_trip(seed_index, tmp_path):
    seed_index.save(tmp_path / "lexical")
    loaded = LexicalIndex.load(tmp_path / "lexical")
    assert (loaded.n_docs, loaded.scheme, loaded.k1, loaded.b, loaded.method) == (
        seed_index.n_docs, seed_index.scheme, seed_index.k1, seed_index.b, seed_index.method)
    for question in ("17076", "法律顾问出具了多少份意见", "行政复议申请"):
        expected_ids, expected_scores = seed_index.search(question, 5)
        ids, scores = loaded.search(question, 5)
        assert ids.tolist() == expected_ids.tolist()
        np.testing.assert_allclose(scores, expected_scores)


def test_save_replaces_an_existing_index(tmp_path):
    LexicalIndex.build(SEED_PARAGRAPHS).save(tmp_path / "lexical")
    LexicalIndex.build(["只有一段话"]).save(tmp_path / "lexical")
    assert len(LexicalIndex.load(tmp_path / "lexical")) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lexical"]


def test_empty_index_searches_and_round_trips(tmp_path):
    for texts in ([], ["。。", "  "]):
        index = LexicalIndex.build(texts)
        assert index.search("调解", 3)[0].size == 0
        index.save(tmp_path / "empty")
        assert len(LexicalIndex.load(tmp_path / "empty")) == len(texts)


def _saved(index: LexicalIndex, tmp_path):
    directory = tmp_path / "lexical"
    index.save(directory)
    return directory


def test_truncated_array_file_is_detected(seed_index, tmp_path):
    directory = _saved(seed_index, tmp_path)
    data = directory / "data.npy"
    data.write_bytes(data.read_bytes()[:-16])
    with pytest.raises(IndexStoreError, match="corrupt"):
        LexicalIndex.load(directory)


def test_flipped_byte_in_vocabulary_is_detected(seed_index, tmp_path):
    directory = _saved(seed_index, tmp_path)
    vocab = directory / "vocab.txt"
    raw = bytearray(vocab.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    vocab.write_bytes(bytes(raw))
    with pytest.raises(IndexStoreError, match="corrupt"):
        LexicalIndex.load(directory)


def test_missing_file_or_manifest_is_detected(seed_index, tmp_path):
    directory = _saved(seed_index, tmp_path)
    (directory / "indptr.npy").unlink()
    with pytest.raises(IndexStoreError, match="missing"):
        LexicalIndex.load(directory)
    (directory / MANIFEST_NAME).unlink()
    with pytest.raises(IndexStoreError, match="missing"):
        LexicalIndex.load(directory)
    with pytest.raises(IndexStoreError):
        LexicalIndex.load(tmp_path / "never-built")


@pytest.mark.parametrize("manifest", [b"{not json", b"\xff\xfe", b"[]", b'{"format": 1}'])
def test_garbled_manifest_is_detected(seed_index, tmp_path, manifest):
    directory = _saved(seed_index, tmp_path)
    (directory / MANIFEST_NAME).write_bytes(manifest)
    with pytest.raises(IndexStoreError):
        LexicalIndex.load(directory)


def test_index_from_another_tokenizer_version_is_not_trusted(seed_index, tmp_path):
    directory = _saved(seed_index, tmp_path)
    manifest_path = directory / MANIFEST_NAME
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["tokenizer_version"] += 1
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(IndexStoreError, match="rebuild"):
        LexicalIndex.load(directory)


def test_error_messages_are_one_line(seed_index, tmp_path):
    directory = _saved(seed_index, tmp_path)
    (directory / "data.npy").write_bytes(b"")
    with pytest.raises(IndexStoreError) as caught:
        LexicalIndex.load(directory)
    assert "\n" not in str(caught.value)


# --- CMRC2018 -------------------------------------------------------------------------------


@pytest.mark.slow
def test_cmrc2018_dev_passage_recall(shared_dir):
    sys.path.insert(0, str(REPO / "scripts"))
    from bench_lexical import evaluate_cmrc, load_cmrc

    passages, questions = load_cmrc(shared_dir / "benchmarks" / "cmrc2018" / "cmrc2018_dev.json")
    assert (len(passages), len(questions)) == (848, 3219)
    result = evaluate_cmrc(passages, questions, DEFAULT_SCHEME)
    # measured 0.976 / 0.998 (bench_lexical.py); the plain char-bigram baseline is 0.963 / 0.997
    assert result["r1"] >= 0.97
    assert result["r5"] >= 0.995


def test_lucene_postings_computed_here_equal_bm25s():
    """The default BM25 is computed with numpy (fast rebuilds); it must give bm25s's numbers."""
    from retrieval.bm25 import bm25s_postings, lucene_postings

    texts = SEED_PARAGRAPHS + ["", "调解 调解 调解 17076", "法律顾问"]
    index = LexicalIndex.build(texts)
    mine = index._postings
    flat = [mine.token_id(t) for text in texts for t in tokenize(text)]
    offsets = np.cumsum([0] + [len(tokenize(text)) for text in texts])
    ids = np.array(flat, dtype=np.int64)
    assert lucene_postings(mine.tokens, ids, offsets, 1.2, 0.5).data.tolist() == mine.data.tolist()
    reference = bm25s_postings(mine.tokens, ids, offsets, 1.2, 0.5, "lucene")
    assert mine.tokens == sorted(set(mine.tokens)) and len(mine.tokens) > 100
    np.testing.assert_array_equal(mine.indptr, reference.indptr)
    np.testing.assert_array_equal(mine.indices, reference.indices)
    np.testing.assert_allclose(mine.data, reference.data, rtol=1e-6)
    assert index.document_frequency("调解") == sum("调解" in t for t in texts)


# --- cutting an index down to fewer reports -------------------------------------------------


def _arrays(index: LexicalIndex):
    p = index._postings
    return p.tokens, p.indptr.tolist(), p.indices.tolist(), p.data.tolist(), p.tf.tolist(), p.lengths.tolist()


GROUP_TEXTS = {
    "a": SEED_PARAGRAPHS[:40],
    "b": SEED_PARAGRAPHS[40:90] + ["调解 调解 调解 17076"],
    "c": SEED_PARAGRAPHS[90:],
    "d": ["只在这一份报告里出现的词：坪山公证处", "法律顾问"],
}


def _grouped(keys):
    texts = [t for k in keys for t in GROUP_TEXTS[k]]
    return LexicalIndex.build(texts, groups=[(k, len(GROUP_TEXTS[k])) for k in keys])


@pytest.mark.parametrize("kept", [["a", "c", "d"], ["b", "c", "d"], ["a", "b", "c"], ["d"], ["a", "b", "c", "d"]])
def test_removing_reports_gives_exactly_the_index_built_from_the_rest(kept, tmp_path):
    """What `reports remove` relies on: the cut-down index is the one a rebuild gives, to the bit
    (vocabulary, postings, BM25 scores — N, df and the mean length are the remaining reports')."""
    full = _grouped(["a", "b", "c", "d"])
    full.save(tmp_path / "lexical")
    cut = LexicalIndex.load(tmp_path / "lexical").restricted_to(kept)
    rebuilt = _grouped(kept)
    assert cut is not None and cut.groups == rebuilt.groups and len(cut) == len(rebuilt)
    assert _arrays(cut) == _arrays(rebuilt)
    if "d" not in kept:
        assert not cut.has_token("坪山")  # a token only the removed report had leaves the vocabulary
    ids, scores = cut.search("调解矛盾纠纷", 5)
    expected_ids, expected_scores = rebuilt.search("调解矛盾纠纷", 5)
    assert ids.tolist() == expected_ids.tolist() and scores.tolist() == expected_scores.tolist()


def test_an_index_is_not_cut_to_reports_it_does_not_hold_in_that_order(tmp_path):
    full = _grouped(["a", "b", "c"])
    assert full.restricted_to(["b", "a"]) is None  # another order
    assert full.restricted_to(["a", "x"]) is None  # a report it never indexed (added: rebuild)
    assert full.restricted_to(["a", "a"]) is None
    assert LexicalIndex.build(SEED_PARAGRAPHS).restricted_to([]) is None  # no groups known
    assert len(full.restricted_to([])) == 0


def test_an_index_saved_without_term_counts_still_loads_and_serves(seed_index, tmp_path):
    """Format 2 (before counts and groups were kept) is read as before; it is rebuilt, not cut."""
    directory = _saved(seed_index, tmp_path)
    manifest = json.loads((directory / MANIFEST_NAME).read_text())
    for name in ("tf.npy", "lengths.npy"):
        (directory / name).unlink()
        del manifest["files"][name]
    del manifest["groups"]
    manifest["format"] = 2
    (directory / MANIFEST_NAME).write_text(json.dumps(manifest))
    loaded = LexicalIndex.load(directory)
    assert loaded.search("17076", 3)[0].tolist() == seed_index.search("17076", 3)[0].tolist()
    assert loaded.restricted_to([]) is None


def test_groups_that_do_not_add_up_are_refused(tmp_path):
    with pytest.raises(ValueError, match="groups hold"):
        LexicalIndex.build(["调解", "复议"], groups=[("a", 1)])
    directory = _saved(_grouped(["a", "b"]), tmp_path)
    manifest = json.loads((directory / MANIFEST_NAME).read_text())
    manifest["groups"][0][1] += 1
    (directory / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(IndexStoreError, match="malformed"):
        LexicalIndex.load(directory)
