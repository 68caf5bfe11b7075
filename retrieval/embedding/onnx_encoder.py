"""Passage encoding for the default model through ONNX Runtime: int8, no torch.

Why: building the index is dominated by embedding ~60,000 sentences. The converted model exported to
ONNX and dynamically quantized to int8 (per-channel weights, `onnx_export`) encodes ~3x as many
sentences a second as sentence-transformers in fp32 on 2 cores, loads in ~1 s instead of ~5 s
(no torch import), and needs ~0.6 GB instead of ~1.2 GB. scripts/bench_embedder.py measures the
candidates side by side.

Same windows, same prompt and same pooling as the sentence-transformers path
(`retrieval.embedding.windows`); the graph returns mean-pooled, unnormalised vectors.
"""

from __future__ import annotations

import contextlib
import json
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np

from retrieval.embedding.st_encoder import cpu_threads
from retrieval.embedding.windows import combine_windows, longest_first, window_weights
from retrieval.errors import ModelError

INPUT_IDS, ATTENTION_MASK, POOLED = "input_ids", "attention_mask", "pooled"
CHUNK_TEXTS = 4096


class OnnxPassageEncoder:
    """An ONNX mean-pooling encoder plus its `tokenizer.json`, with windowed, length-sorted batches."""

    def __init__(
        self,
        onnx_file: Path,
        tokenizer_file: Path,
        *,
        max_tokens: int,
        pad_id: int,
        batch_size: int = 8,  # measured: 8 ≈ 4 > 16 > 32 sentences/s for int8 on 2 cores
        threads: int | None = None,
        batch_lock: AbstractContextManager | None = None,
    ) -> None:
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as e:
            raise ModelError(f"encoding passages needs onnxruntime and tokenizers: {e}") from None
        options = ort.SessionOptions()
        self.workers = threads or cpu_threads()
        options.intra_op_num_threads = 1  # parallel over batches instead (see _encode_windows)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # warnings about unused initializers would clutter the CLI
        try:
            self._session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
            tokenizer = Tokenizer.from_file(str(tokenizer_file))
        except Exception as e:  # noqa: BLE001 - any load failure is a broken model directory for the user
            first_line = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise ModelError(f"cannot load the passage model {onnx_file}: {first_line}") from None
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=max_tokens, stride=0)
        self._tokenizer = tokenizer
        self._batch_lock = batch_lock or contextlib.nullcontext()
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.pad_id = pad_id
        self.n_special = tokenizer.num_special_tokens_to_add(False)

    @classmethod
    def from_model_dir(cls, model_dir: Path, onnx_file: Path, **kwargs) -> OnnxPassageEncoder:
        """The encoder for a converted sentence-transformers directory and its exported graph:
        window length from sentence_bert_config.json, padding id from config.json."""
        try:
            max_tokens = int(json.loads((model_dir / "sentence_bert_config.json").read_text("utf-8"))["max_seq_length"])
            pad_id = int(json.loads((model_dir / "config.json").read_text("utf-8"))["pad_token_id"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ModelError(f"model directory {model_dir} is incomplete ({e}); delete it to rebuild") from None
        return cls(onnx_file, model_dir / "tokenizer.json", max_tokens=max_tokens, pad_id=pad_id, **kwargs)

    def windows(self, texts: list[str], prompt: str) -> tuple[list[list[int]], np.ndarray]:
        """Token-id windows of prompt + text (special tokens in each) and the text each belongs to."""
        windows: list[list[int]] = []
        owner: list[int] = []
        for i, enc in enumerate(self._tokenizer.encode_batch([prompt + t for t in texts])):
            for part in (enc, *enc.overflowing):
                windows.append(part.ids)
                owner.append(i)
        return windows, np.asarray(owner, dtype=np.int64)

    def encode(self, texts: list[str], prompt: str, *, progress: bool = False) -> np.ndarray:
        """L2-normalised float32 vectors, one row per text; texts go through in chunks so a whole
        library's windows and float64 sums are never in memory at once."""
        out: np.ndarray | None = None
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(texts), desc="embedding passages", unit="sentence")
        for start in range(0, len(texts), CHUNK_TEXTS):
            chunk = texts[start : start + CHUNK_TEXTS]
            windows, owner = self.windows(chunk, prompt)
            pooled = self._encode_windows(windows)
            vectors = combine_windows(pooled, owner, window_weights(windows, self.n_special), len(chunk))
            if out is None:
                out = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
            out[start : start + len(chunk)] = vectors
            if bar is not None:
                bar.update(len(chunk))
        if bar is not None:
            bar.close()
        return out if out is not None else np.zeros((0, 0), dtype=np.float32)

    def _encode_windows(self, windows: list[list[int]]) -> np.ndarray:
        """Pooled vectors, longest first; `workers` batches at a time, each on its own thread (ONNX
        Runtime releases the GIL): on 2 cores two single-threaded batches side by side measured
        ~1.3x one batch on two threads, whose small matrices split badly."""
        order = longest_first(windows)
        batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        out: np.ndarray | None = None
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            for start in range(0, len(batches), self.workers):
                group = batches[start : start + self.workers]
                with self._batch_lock:
                    results = list(pool.map(lambda idx: self._run(windows, idx), group))
                for idx, vectors in zip(group, results, strict=True):
                    if out is None:
                        out = np.empty((len(windows), vectors.shape[1]), dtype=np.float32)
                    out[idx] = vectors
        assert out is not None
        return out

    def _run(self, windows: list[list[int]], idx: list[int]) -> np.ndarray:
        width = len(windows[idx[0]])  # longest first
        ids = np.full((len(idx), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(idx), width), dtype=np.int64)
        for row, i in enumerate(idx):
            ids[row, : len(windows[i])] = windows[i]
            mask[row, : len(windows[i])] = 1
        (vectors,) = self._session.run([POOLED], {INPUT_IDS: ids, ATTENTION_MASK: mask})
        return vectors
