"""One validated settings object, read from `WORKBENCH_*` environment variables.

Everything that writes to disk (collections, MLflow runs, reports) goes under `home`,
which defaults to `.workbench/` inside the project folder (git-ignored). Content-addressed caches (embeddings,
reassembled model weights) go under `cache_dir` (`WORKBENCH_CACHE`, default `home/cache`), which tests share with
the project so that vectors are computed once.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _env(name: str, default: str) -> str:
    return os.environ.get(f"WORKBENCH_{name}", default)


@dataclass(frozen=True)
class Settings:
    home: Path
    cache_dir: Path  # embeddings, reassembled models, fingerprints: safe to share between homes
    shared_data: Path
    datasets: Path
    encode_batch_size: int
    mlflow_tracking_uri: str

    @property
    def models_dir(self) -> Path:
        return self.cache_dir / "models"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def collections_dir(self) -> Path:
        return self.home / "collections"

    @classmethod
    def from_env(cls) -> "Settings":
        home = Path(_env("HOME", str(PROJECT_ROOT / ".workbench"))).expanduser().resolve()
        batch = _env("ENCODE_BATCH_SIZE", "64")
        if not batch.isdigit() or int(batch) <= 0:
            raise ValueError(f"WORKBENCH_ENCODE_BATCH_SIZE must be a positive integer, got {batch!r}")
        return cls(
            home=home,
            cache_dir=Path(_env("CACHE", str(home / "cache"))).expanduser().resolve(),
            shared_data=Path(_env("SHARED_DATA", str(PROJECT_ROOT.parent / "shared" / "data"))).resolve(),
            datasets=Path(_env("DATASETS", str(PROJECT_ROOT / "datasets"))).resolve(),
            encode_batch_size=int(batch),
            mlflow_tracking_uri=_env("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}"),
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings. Tests that change the environment call `get_settings.cache_clear()`."""
    return Settings.from_env()
