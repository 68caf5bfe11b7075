"""Whether the reports cover a question at all: a calibrated decision on the best candidate. Pure.

Features of the top-ranked passage:
- dense: its dense score with the question (multilingual: the only signal for English questions);
- coverage: IDF-weighted share of the question's tokens the passage contains (Chinese questions);
- a year the question names that neither the passage nor its report is about → not covered;
- a place the question names (长沙) that none of the reports in scope mentions → not covered.

The decision is a logistic model per (mode, Chinese or not) — coverage means nothing for an English
question over Chinese text. `scripts/calibrate_refusal.py` fits it on the tune half of the dev
questions, picks the threshold that keeps wrongly refused in-scope questions ≤ 3 % there, checks
the held-out half, and writes `refusal_model.json` beside this file.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

MODEL_FILE = Path(__file__).with_name("refusal_model.json")
_HAN = re.compile(r"[\u3400-\u9fff]")


@dataclass(frozen=True)
class RefusalFeatures:
    dense: float  # dense score of the top passage
    coverage: float  # IDF-weighted token coverage of the question by the top passage (0..1)
    chinese: bool  # the question is written in Chinese
    year_conflict: bool  # the question names a year the top passage/report does not cover
    place_conflict: bool = False  # the question names a place none of the reports in scope mentions

    def vector(self) -> tuple[float, float]:
        return (self.dense, self.coverage)


@dataclass(frozen=True)
class LogisticModel:
    weights: tuple[float, float]  # for (dense, coverage)
    bias: float
    threshold: float  # covered when probability ≥ threshold

    def probability(self, f: RefusalFeatures) -> float:
        z = sum(w * x for w, x in zip(self.weights, f.vector(), strict=True)) + self.bias
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))


def model_key(mode: str, chinese: bool) -> str:
    return f"{mode}/{'zh' if chinese else 'other'}"


@lru_cache(maxsize=1)
def load_models() -> dict[str, LogisticModel]:
    """The fitted models; with no file yet (first calibration), everything counts as covered."""
    try:
        raw = json.loads(MODEL_FILE.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    return {
        k: LogisticModel(tuple(v["weights"]), float(v["bias"]), float(v["threshold"]))
        for k, v in raw["models"].items()
    }


def is_chinese(question: str) -> bool:
    han = len(_HAN.findall(question))
    return han >= 2 and han >= 0.3 * sum(not c.isspace() for c in question)


def is_covered(f: RefusalFeatures, mode: str) -> bool:
    """The decision: False on a year or place conflict, else the fitted model for this mode and script."""
    if f.year_conflict or f.place_conflict:
        return False
    model = load_models().get(model_key(mode, f.chinese))
    return model is None or model.probability(f) >= model.threshold
