"""Fit the covered / not-covered decision (retrieval/refusal.py) on the tune half of the dev questions.

For every mode and script (Chinese / other), a logistic model over (dense score, token coverage) of
the top passage is fitted on the tune questions of every question file, and its threshold is the
one that refuses the most out-of-scope tune questions while wrongly refusing at most 3 % of the
in-scope ones. The held-out half is only scored, never fitted on. `--write` saves the models to
retrieval/refusal_model.json.

    .venv/bin/python scripts/calibrate_refusal.py --write
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from retrieval.config import Settings  # noqa: E402
from retrieval.corpus import load_corpus  # noqa: E402
from retrieval.evaluate import load_questions  # noqa: E402
from retrieval.refusal import MODEL_FILE, model_key  # noqa: E402
from retrieval.retriever import MODES, Retriever  # noqa: E402

LONGHUA = REPO.parent / "shared" / "corpora" / "gov-work-reports" / "深圳市龙华区2019年法治政府建设工作报告_2019.txt"
MAX_WRONGLY_REFUSED = 0.03


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 0.01, steps: int = 4000) -> tuple[np.ndarray, float]:
    """Plain L2-regularised logistic regression by gradient descent, on standardised features."""
    mu, sd = x.mean(0), x.std(0)
    sd = np.where(sd > 1e-9, sd, np.inf)  # a constant feature gets weight 0
    z = (x - mu) / sd
    w, b = np.zeros(z.shape[1]), 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(z @ w + b)))
        g = p - y
        w -= 0.5 * (z.T @ g / len(y) + l2 * w)
        b -= 0.5 * g.mean()
    w_raw = w / sd
    return w_raw, float(b - w_raw @ mu)  # back to raw feature units


def probability(x: np.ndarray, w: np.ndarray, b: float) -> np.ndarray:
    return 1 / (1 + np.exp(-(x @ w + b)))


def pick_threshold(p: np.ndarray, in_scope: np.ndarray) -> float:
    """Highest threshold (most refusals) that wrongly refuses ≤ MAX_WRONGLY_REFUSED of in-scope."""
    best = 0.0
    for t in np.linspace(0, 1, 401):
        if np.mean(p[in_scope] < t) <= MAX_WRONGLY_REFUSED:
            best = t
    return float(best)


def collect(retriever: Retriever, path: Path, mode: str):
    rows = []
    for q in load_questions(path):
        _, f = retriever.ask_explained(q.question, top_k=1, mode=mode)
        if f is None or f.year_conflict or f.place_conflict:
            continue  # decided by rule, not by the model
        rows.append((q.split, f.chinese, q.in_scope, f.vector()))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="save the fitted models")
    ap.add_argument("--home", default=str(REPO / ".reportqa"), help="REPORTQA_HOME to build indexes in")
    ap.add_argument("--script", choices=("all", "zh", "other"), default="all",
                    help="refit only the Chinese or only the other (English) models; the rest are kept as written")
    args = ap.parse_args()

    eval_dir = REPO / "corpus" / "eval"
    seed = (REPO / "corpus",)
    sets = [(eval_dir / "hengyang-dev.jsonl", seed), (eval_dir / "english-hengyang-dev.jsonl", seed)]
    if LONGHUA.exists():
        sets.append((eval_dir / "longhua-dev.jsonl", (LONGHUA,)))
        sets.append((eval_dir / "english-longhua-dev.jsonl", (LONGHUA,)))
    retrievers = []
    built: dict = {}
    for qfile, dirs in sets:
        if dirs in built:
            retrievers.append((qfile, built[dirs]))
            continue
        settings = Settings(home=Path(args.home))
        if dirs[0].is_file():
            from retrieval.corpus import meta_from_file
            from retrieval.parse import parse_report
            from retrieval.sources import read_report_text

            reports = [parse_report(read_report_text(dirs[0]), meta_from_file(dirs[0]))]
            name = "calibrate-longhua"
        else:
            reports, name = load_corpus(dirs), "corpus"
        built[dirs] = Retriever.from_reports(reports, settings, name=name)
        retrievers.append((qfile, built[dirs]))

    models: dict[str, dict] = {}
    for mode in MODES:
        rows = [r for qfile, ret in retrievers for r in collect(ret, qfile, mode)]
        for chinese in (True, False):
            if args.script != "all" and chinese != (args.script == "zh"):
                continue
            sub = [r for r in rows if r[1] == chinese]
            x = np.array([r[3] for r in sub], dtype=float)
            y = np.array([r[2] for r in sub], dtype=bool)
            tune = np.array([r[0] == "tune" for r in sub])
            if not tune.any() or y[tune].all() or not y[tune].any():
                continue
            # English: coverage is that of the question's Chinese gloss (retrieval/translate.py). The
            # dense score alone refuses nothing there, and fitted beside coverage on the few English
            # out-of-scope tune questions it took a negative weight: coverage only.
            if not chinese:
                x = x * np.array([0.0, 1.0])
            w, b = fit_logistic(x[tune], y[tune].astype(float))
            thr = pick_threshold(probability(x[tune], w, b), y[tune])
            p = probability(x, w, b)
            for split, m in (("tune", tune), ("heldout", ~tune)):
                ins, oos = m & y, m & ~y
                print(
                    f"{model_key(mode, chinese):14} {split:8} in={ins.sum():3d} oos={oos.sum():3d} "
                    f"refused-oos={np.mean(p[oos] < thr) if oos.any() else float('nan'):.3f} "
                    f"wrongly-refused={np.mean(p[ins] < thr) if ins.any() else float('nan'):.3f}"
                )
            models[model_key(mode, chinese)] = {
                "weights": [round(float(v), 6) for v in w],
                "bias": round(b, 6),
                "threshold": round(thr, 4),
            }
    if args.script != "all" and MODEL_FILE.exists():  # keep the models not refitted
        kept = json.loads(MODEL_FILE.read_text(encoding="utf-8"))["models"]
        keys = [model_key(m, c) for m in MODES for c in (True, False)]
        models = {k: models.get(k, kept.get(k)) for k in keys if k in models or k in kept}
    print(json.dumps(models, indent=1))
    if args.write:
        MODEL_FILE.write_text(
            json.dumps({"features": ["dense", "coverage"], "models": models}, indent=1) + "\n", encoding="utf-8"
        )
        print(f"wrote {MODEL_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
