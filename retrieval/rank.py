"""Ranking: fuse the dense and lexical legs into one ordered candidate list. Pure functions.

Both legs score the union of their top candidates exactly (cosine from the stored vectors, BM25
from the full score vector), then scores are put on a common 0..1 scale per question and mixed:

    fused = w · dense_norm + (1 − w) · lexical_norm

dense_norm is the cosine min-max scaled over the candidates; lexical_norm is BM25 divided by the
best BM25 of the question. The weight w (DENSE_WEIGHT) was tuned on the tune half of the dev set;
the numbers are in the README (`make eval`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DENSE_WEIGHT = 0.5
# An English question shares no tokens with Chinese text but numbers and stray words, so its
# lexical leg is mostly noise: on the tune questions 0.9 lifted top-1 (Hengyang 0.934 → 0.951,
# Longhua 0.882 → 0.912) and changed no Chinese question.
NON_CHINESE_DENSE_WEIGHT = 0.9
# An English question read through its Chinese gloss (retrieval/translate.py) has a real lexical leg:
# on the English tune questions 0.5 did best (top-1 0.889 vs 0.869 at 0.3/0.6, 0.848 at 0.75).
ENGLISH_DENSE_WEIGHT = 0.5


def dense_weight_for(chinese: bool, glossed: bool) -> float:
    """Fusion weight of the dense leg, by how the question's words can meet the Chinese text: as
    Chinese, through an English question's Chinese gloss, or not at all."""
    if chinese:
        return DENSE_WEIGHT
    return ENGLISH_DENSE_WEIGHT if glossed else NON_CHINESE_DENSE_WEIGHT
PARAGRAPH_WEIGHT = 0.3  # dense score of a paragraph = 0.3 · its own cosine + 0.7 · its best sentence's
YEAR_BONUS = 0.05  # a passage from the named year's report, or quoting the named year


@dataclass(frozen=True)
class Ranked:
    ids: np.ndarray  # passage ids, best first
    fused: np.ndarray  # fused score per id (0..1 scale for hybrid, raw for single legs)
    dense: np.ndarray  # cosine per id
    lexical: np.ndarray  # BM25 per id


def _minmax(x: np.ndarray) -> np.ndarray:
    if x.size == 0:
        return x
    lo, hi = float(x.min()), float(x.max())
    if hi - lo < 1e-9:
        return np.ones_like(x) if hi > 0 else np.zeros_like(x)
    return (x - lo) / (hi - lo)


def fuse(
    ids: np.ndarray,
    dense: np.ndarray,
    lexical: np.ndarray,
    *,
    mode: str = "hybrid",
    dense_weight: float | None = None,
    bonus: np.ndarray | None = None,
) -> Ranked:
    """Order candidates `ids` (with their dense cosines and BM25 scores) for a retrieval mode."""
    w = DENSE_WEIGHT if dense_weight is None else dense_weight
    if mode == "dense":
        fused = dense.astype(np.float64)
    elif mode == "lexical":
        fused = lexical.astype(np.float64)
    else:
        top_lex = float(lexical.max()) if lexical.size else 0.0
        lex_norm = lexical / top_lex if top_lex > 0 else np.zeros_like(lexical)
        fused = w * _minmax(dense.astype(np.float64)) + (1 - w) * lex_norm
    if bonus is not None:
        fused = fused + bonus
    order = np.lexsort((ids, -fused))
    return Ranked(ids=ids[order], fused=fused[order], dense=dense[order], lexical=lexical[order])
