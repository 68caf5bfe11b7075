"""Measure the lexical leg: CMRC2018 dev passage retrieval per tokenizer scheme, and latency at scale.

    .venv/bin/python scripts/bench_lexical.py            # CMRC table + shared-corpora latency
    .venv/bin/python scripts/bench_lexical.py --sweep    # also a k1/b/method grid for the default scheme

CMRC2018 dev: the 848 `context` passages are indexed, each of the 3219 questions is asked, and a
hit is the passage the question was written on (R@1, R@5, MRR@10). Latency: every non-empty line
of ../shared/corpora plus the seed report is one paragraph; queries are citizen-style questions and
the first clause of sampled paragraphs.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from retrieval.lexical import (  # noqa: E402
    DEFAULT_B,
    DEFAULT_K1,
    DEFAULT_METHOD,
    DEFAULT_SCHEME,
    SCHEMES,
    LexicalIndex,
)

SHARED = REPO.parent / "shared"
CMRC_DEV = SHARED / "benchmarks" / "cmrc2018" / "cmrc2018_dev.json"
CORPORA = SHARED / "corpora"
SEED = REPO / "corpus" / "hengyang-2019-fazhi-zhengfu-report.txt"

CITIZEN_QUESTIONS = [
    "2019年调解了多少矛盾纠纷",
    "去年衡阳市打官司的人多吗",
    "办营业执照要跑几次",
    "政府有没有请法律顾问",
    "行政机关负责人出庭应诉率是多少",
    "深圳市龙华区2019年法治政府建设有什么成绩",
    "政府工作报告里怎么说优化营商环境",
    "How many disputes were mediated in 2019?",
    "《重大行政决策程序暂行条例》什么时候施行",
    "参考率99.17%",
]


def load_cmrc(path: Path = CMRC_DEV) -> tuple[list[str], list[tuple[str, int]]]:
    """Passages and (question, index of its passage) pairs."""
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    passages: list[str] = []
    questions: list[tuple[str, int]] = []
    for article in data:
        for paragraph in article["paragraphs"]:
            passages.append(paragraph["context"])
            questions.extend((qa["question"], len(passages) - 1) for qa in paragraph["qas"])
    return passages, questions


def evaluate_cmrc(
    passages: list[str],
    questions: list[tuple[str, int]],
    scheme: str,
    k1: float = DEFAULT_K1,
    b: float = DEFAULT_B,
    method: str = DEFAULT_METHOD,
) -> dict[str, float]:
    """R@1, R@5, MRR@10, index build seconds and query p50 ms for one configuration."""
    start = time.perf_counter()
    index = LexicalIndex.build(passages, scheme=scheme, k1=k1, b=b, method=method)
    build_s = time.perf_counter() - start
    hits1 = hits5 = 0
    reciprocal = 0.0
    latencies = []
    for question, gold in questions:
        start = time.perf_counter()
        ids, _ = index.search(question, 10)
        latencies.append(time.perf_counter() - start)
        ranked = ids.tolist()
        if gold in ranked:
            rank = ranked.index(gold) + 1
            hits1 += rank == 1
            hits5 += rank <= 5
            reciprocal += 1.0 / rank
    n = len(questions)
    return {
        "r1": hits1 / n,
        "r5": hits5 / n,
        "mrr10": reciprocal / n,
        "build_s": build_s,
        "p50_ms": statistics.median(latencies) * 1000,
    }


def corpus_paragraphs() -> list[str]:
    files = sorted(CORPORA.rglob("*.txt")) + sorted(CORPORA.rglob("*.md")) + [SEED]
    lines = (line.strip() for f in files for line in f.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line]


def latency_at_scale(seed: int = 0) -> dict[str, float]:
    paragraphs = corpus_paragraphs()
    start = time.perf_counter()
    index = LexicalIndex.build(paragraphs)
    build_s = time.perf_counter() - start
    rng = random.Random(seed)
    sampled = [p.split("。")[0][:40] for p in rng.sample(paragraphs, 300)]
    queries = CITIZEN_QUESTIONS + sampled
    for query in queries[:20]:  # warm caches (OpenCC dictionary, numpy paths)
        index.search(query, 10)
    latencies = []
    for query in queries:
        start = time.perf_counter()
        index.search(query, 10)
        latencies.append(time.perf_counter() - start)
    latencies.sort()
    return {
        "paragraphs": len(paragraphs),
        "build_s": build_s,
        "queries": len(queries),
        "p50_ms": statistics.median(latencies) * 1000,
        "p95_ms": latencies[int(0.95 * (len(latencies) - 1))] * 1000,
        "max_ms": latencies[-1] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", action="store_true", help="grid over k1/b/method for the default scheme")
    parser.add_argument("--schemes", nargs="*", default=list(SCHEMES), choices=SCHEMES)
    parser.add_argument("--no-scale", action="store_true", help="skip the shared-corpora latency check")
    args = parser.parse_args()

    passages, questions = load_cmrc()
    print(f"CMRC2018 dev: {len(passages)} passages, {len(questions)} questions "
          f"(k1={DEFAULT_K1}, b={DEFAULT_B}, method={DEFAULT_METHOD})")
    print("| tokenizer | R@1 | R@5 | MRR@10 | index s | query p50 ms |")
    print("|---|---|---|---|---|---|")
    for scheme in args.schemes:
        row = evaluate_cmrc(passages, questions, scheme)
        marker = " (default)" if scheme == DEFAULT_SCHEME else ""
        print(f"| {scheme}{marker} | {row['r1']:.3f} | {row['r5']:.3f} | {row['mrr10']:.3f} | "
              f"{row['build_s']:.2f} | {row['p50_ms']:.2f} |", flush=True)

    if args.sweep:
        print(f"\nBM25 parameter sweep, scheme={DEFAULT_SCHEME}")
        print("| method | k1 | b | R@1 | R@5 | MRR@10 |")
        print("|---|---|---|---|---|---|")
        methods, k1s, bs = ("lucene", "robertson", "bm25+"), (0.9, 1.2, 1.5, 2.0), (0.3, 0.5, 0.75, 0.9)
        grid = itertools.product(methods, k1s, bs)
        for method, k1, b in grid:
            row = evaluate_cmrc(passages, questions, DEFAULT_SCHEME, k1=k1, b=b, method=method)
            print(f"| {method} | {k1} | {b} | {row['r1']:.3f} | {row['r5']:.3f} | {row['mrr10']:.3f} |",
                  flush=True)

    if not args.no_scale:
        scale = latency_at_scale()
        print(f"\nShared corpora + seed: {scale['paragraphs']} paragraphs, "
              f"index build {scale['build_s']:.1f} s; "
              f"{scale['queries']} queries: p50 {scale['p50_ms']:.2f} ms, p95 {scale['p95_ms']:.2f} ms, "
              f"max {scale['max_ms']:.2f} ms")


if __name__ == "__main__":
    main()
