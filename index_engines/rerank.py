"""Cross-encoder rerankers: load from a folder, score (query, passage) pairs in batches, a registry of versions.

No trained cross-encoder ships offline, so rerankers are trained here (`workbench train-reranker`) and saved under
`<home>/rerankers/<name>-v<N>/`: the weights in `model/` and beside them `model_card.json` (data, steps, seed, base
fingerprint, and the fingerprint of `model/`, so a card never changes the fingerprint it records). The
registry is that folder: `resolve_reranker("scifact-minilm")` is the latest version, `"scifact-minilm-v2"` an exact
one. A folder without a model card is an interrupted save and is ignored (saves are temp folder + rename).

Scores are the model's raw logits (no sigmoid): monotone in relevance, and without saturation that would turn
close candidates into ties. Scoring runs in eval mode without gradients, so the same pairs always get the same
scores. Logits are rounded to 1e-6: padding in a batch perturbs them by ~1e-9, and without rounding that noise
would order two identical passages arbitrarily; after it they tie and break by id ascending.
"""
from __future__ import annotations

import json
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .models import compute_fingerprint
from .settings import get_settings

CARD_FILE = "model_card.json"
WEIGHTS_DIR = "model"
DEFAULT_MAX_LENGTH = 256
SCORE_DECIMALS = 6
_FOLDER_RE = re.compile(r"^(?P<name>[a-z0-9][a-z0-9_.-]*?)-v(?P<version>[1-9][0-9]*)$")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
TRAIN_HINT = "train one with `workbench train-reranker` (a few minutes on the CPU)"


class RerankerNotFoundError(ValueError):
    """No trained reranker matches the name; the message lists the available ones and how to train one."""


def check_reranker_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name) or _FOLDER_RE.match(name):
        raise ValueError(f"reranker name {name!r} must be lowercase letters, digits, '.', '_' or '-', start with a "
                         f"letter or digit, and not end in -v<N> (versions are added by the registry)")
    return name


def rerankers_dir() -> Path:
    return get_settings().home / "rerankers"


@dataclass(frozen=True)
class RerankerInfo:
    name: str
    version: int
    path: Path
    card: dict

    @property
    def ref(self) -> str:
        return f"{self.name}-v{self.version}"


def list_rerankers(directory: Path | None = None) -> list[RerankerInfo]:
    """Every completed reranker in the registry, by name then version."""
    directory = directory or rerankers_dir()
    out = []
    for folder in sorted(directory.glob("*-v*")) if directory.exists() else []:
        m = _FOLDER_RE.match(folder.name)
        card = folder / CARD_FILE
        if m and folder.is_dir() and card.exists():
            out.append(RerankerInfo(m["name"], int(m["version"]), folder, json.loads(card.read_text())))
    return sorted(out, key=lambda r: (r.name, r.version))


def next_version(name: str, directory: Path | None = None) -> int:
    directory = directory or rerankers_dir()
    taken = [int(m["version"]) for p in (directory.glob(f"{name}-v*") if directory.exists() else [])
             if (m := _FOLDER_RE.match(p.name)) and m["name"] == name]
    return max(taken, default=0) + 1


def resolve_reranker(ref: str, directory: Path | None = None) -> RerankerInfo:
    """`name` -> its latest version; `name-vN` -> that version. Raises RerankerNotFoundError."""
    available = list_rerankers(directory)
    m = _FOLDER_RE.match(ref or "")
    if m:
        hits = [r for r in available if r.name == m["name"] and r.version == int(m["version"])]
    else:
        hits = [r for r in available if r.name == ref][-1:]
    if hits:
        return hits[0]
    names = ", ".join(r.ref for r in available) or "none"
    raise RerankerNotFoundError(f"no trained reranker {ref!r} in {directory or rerankers_dir()} "
                                f"(available: {names}); {TRAIN_HINT}")


class Reranker:
    """A cross-encoder loaded from a folder, offline. `score(query, passages)` -> raw logits."""

    def __init__(self, folder: Path | str, *, name: str | None = None, batch_size: int = 32,
                 max_length: int | None = None):
        folder = Path(folder)
        if not folder.is_dir():
            raise RerankerNotFoundError(f"no reranker folder at {folder}; {TRAIN_HINT}")
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        from sentence_transformers import CrossEncoder  # heavy: only once the folder is known to exist

        card_path = folder / CARD_FILE
        self.card: dict = json.loads(card_path.read_text()) if card_path.exists() else {}
        weights = folder / WEIGHTS_DIR if (folder / WEIGHTS_DIR).is_dir() else folder  # a bare CE folder works too
        self.path = folder
        self.weights_path = weights
        self.name = name or folder.name
        self.batch_size = batch_size
        self.max_length = int(max_length or self.card.get("training", {}).get("max_length", DEFAULT_MAX_LENGTH))
        self.model = CrossEncoder(str(weights), num_labels=1, device="cpu", local_files_only=True,
                                  max_length=self.max_length)
        self.model.eval()
        self._lock = threading.Lock()  # a torch module is not safe to call from several threads at once

    @classmethod
    def load(cls, ref: str, **kwargs) -> "Reranker":
        info = resolve_reranker(ref)
        return cls(info.path, name=info.ref, **kwargs)

    @property
    def fingerprint(self) -> str:
        """sha256 of the weight and config files (what the model card records at training time)."""
        return compute_fingerprint(self.weights_path)

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        """float32 relevance logits rounded to 1e-6, one per passage, computed `batch_size` pairs at a time."""
        if not isinstance(query, str) or not query.strip():
            raise ValueError("the query to rerank for is empty")
        passages = list(passages)
        if not passages:
            return np.empty(0, np.float32)
        import torch

        with self._lock, torch.inference_mode():
            scores = self.model.predict([(query, p) for p in passages], batch_size=self.batch_size,
                                        show_progress_bar=False, activation_fn=torch.nn.Identity(),
                                        convert_to_numpy=True)
        return np.round(np.asarray(scores, dtype=np.float64).reshape(-1), SCORE_DECIMALS).astype(np.float32)

    def rerank(self, query: str, candidates: Sequence[tuple[str, str]]) -> list[tuple[str, float]]:
        """(id, text) candidates -> (id, score) by score descending, ties by id ascending."""
        scores = self.score(query, [t for _, t in candidates])
        return sorted(((d, float(s)) for (d, _), s in zip(candidates, scores)), key=lambda h: (-h[1], h[0]))


_loaded: dict[str, Reranker] = {}
_loaded_lock = threading.Lock()


def load_reranker(ref: str) -> Reranker:
    """The process-wide instance of a registered reranker (weights loaded once per version)."""
    info = resolve_reranker(ref)
    key = str(info.path)
    with _loaded_lock:
        if key not in _loaded:
            _loaded[key] = Reranker(info.path, name=info.ref)
        return _loaded[key]
