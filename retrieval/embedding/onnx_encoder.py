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
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np

from retrieval.embedding.st_encoder import cpu_threads
from retrieval.embedding.windows import combine_windows, longest_first, window_weights
from retrieval.errors import ModelError

INPUT_IDS, ATTENTION_MASK, POOLED = "input_ids", "attention_mask", "pooled"


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
        options.intra_op_num_threads = threads or cpu_threads()
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
        """L2-normalised float32 vectors, one row per text."""
        windows, owner = self.windows(texts, prompt)
        if not windows:
            return np.zeros((0, 0), dtype=np.float32)
        pooled = self._encode_windows(windows, progress=progress)
        return combine_windows(pooled, owner, window_weights(windows, self.n_special), len(texts))

    def _encode_windows(self, windows: list[list[int]], *, progress: bool) -> np.ndarray:
        order = longest_first(windows)
        out: np.ndarray | None = None
        batches = range(0, len(order), self.batch_size)
        if progress:
            from tqdm import tqdm

            batches = tqdm(batches, desc="embedding passages", unit="batch")
        for start in batches:
            idx = order[start : start + self.batch_size]
            width = len(windows[idx[0]])  # longest first
            ids = np.full((len(idx), width), self.pad_id, dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                ids[row, : len(windows[i])] = windows[i]
                mask[row, : len(windows[i])] = 1
            with self._batch_lock:
                (vectors,) = self._session.run([POOLED], {INPUT_IDS: ids, ATTENTION_MASK: mask})
            if out is None:
                out = np.empty((len(windows), vectors.shape[1]), dtype=np.float32)
            out[idx] = vectors
        assert out is not None
        return out
