"""Semantic drift: a fixed canary set, a cross-model drift report, and a deploy-time sanity check.

Canaries: the first `CANARY_COUNT` distinct sentences (whitespace-normalised, in file order) of the STS Benchmark
test split, committed in `data/canaries.txt` (a test checks the file still follows the rule). Reference vectors
per model fingerprint live in the data directory (`<home>/canaries/<model>-<fingerprint>.npy`), created on first
use from the pinned model with the embedding cache bypassed.

- `cross_model_drift(old, new)`: where dimensions match, the distribution of cos(old vector, new vector) per
  canary; always, the neighbourhood overlap: Jaccard of each canary's top-k neighbour sets among the canaries under
  the two models. The headline score (mean cosine where dimensions match, else mean Jaccard) classifies the
  change: > 0.95 incremental (old vectors stay usable), < 0.80 needs a full backfill, between: partial.
- `deploy_sanity_check(encoder, reference)`: re-embed the canaries with the serving encoder (cache bypassed) and
  compare with the saved references. Alert when the mean cosine is < 0.99 (a different model or a changed
  tokenizer) or when vector norms drift (a silent normalisation bug keeps directions, so only norms show it).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from index_engines.settings import get_settings

from .evaluate import top_k_exact
from .loaders import load_sts

log = logging.getLogger(__name__)

CANARY_FILE = Path(__file__).parent / "data" / "canaries.txt"
CANARY_COUNT = 1200
MIN_CANARIES = 1000
INCREMENTAL_ABOVE = 0.95
BACKFILL_BELOW = 0.80
SANITY_MIN_COSINE = 0.99
NORM_TOLERANCE = 1e-3  # |norm(new) - norm(reference)| allowed per canary
NEIGHBOURS_K = 10


class Encoder(Protocol):
    id: str
    dim: int
    fingerprint: str

    def encode(self, texts, *, use_cache: bool = True, show_progress: bool | None = None) -> np.ndarray: ...


# ------------------------------------------------------------------------------------------------ canaries
def build_canaries(n: int = CANARY_COUNT) -> list[str]:
    """The canary rule: first n distinct STS-test sentences (both sides of each pair, file order)."""
    pairs = load_sts(get_settings().datasets / "stsbenchmark" / "sts-test.csv.gz")
    seen: set[str] = set()
    out: list[str] = []
    for p in pairs:
        for text in (p.s1, p.s2):
            text = " ".join(text.split())
            if text and text not in seen:
                seen.add(text)
                out.append(text)
    if len(out) < n:
        raise ValueError(f"the STS test split has only {len(out)} distinct sentences; {n} canaries requested")
    return out[:n]


def load_canaries(path: Path = CANARY_FILE) -> list[str]:
    if not path.exists():
        raise FileNotFoundError(f"canary file {path} is missing; rebuild it with "
                                f"golden_sets.drift.write_canaries()")
    texts = [line for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]
    if len(texts) < MIN_CANARIES:
        raise ValueError(f"{path}: {len(texts)} canaries; at least {MIN_CANARIES} are needed for stable figures")
    return texts


def write_canaries(path: Path = CANARY_FILE, n: int = CANARY_COUNT) -> None:
    path.write_text("\n".join(build_canaries(n)) + "\n", encoding="utf-8")


def texts_hash(texts: list[str]) -> str:
    return hashlib.sha256("\n".join(texts).encode()).hexdigest()


# ------------------------------------------------------------------------------------- reference vectors
@dataclass(frozen=True)
class CanaryReference:
    model_id: str
    fingerprint: str
    texts_hash: str
    vectors: np.ndarray
    path: Path


def reference_path(model_id: str, fingerprint: str) -> Path:
    return get_settings().home / "canaries" / f"{model_id}-{fingerprint[:16]}.npy"


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        write(f)
    os.replace(tmp, path)


def ensure_reference(model: Encoder, texts: list[str] | None = None) -> tuple[CanaryReference, bool]:
    """The saved reference vectors of `model` (created now, from the model with its cache bypassed, if missing).
    Returns (reference, created)."""
    texts = load_canaries() if texts is None else texts
    digest = texts_hash(texts)
    path = reference_path(model.id, model.fingerprint)
    meta_path = path.with_suffix(".json")
    if path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("texts_hash") == digest and meta.get("fingerprint") == model.fingerprint:
            return CanaryReference(model.id, model.fingerprint, digest, np.load(path), path), False
        log.warning("canary references in %s were made for other canaries or another model version; rebuilding",
                    path)
    log.info("no canary references for %s yet: embedding %d canaries (cache bypassed) into %s",
             model.id, len(texts), path)
    vectors = np.asarray(model.encode(texts, use_cache=False, show_progress=False), dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1)
    if np.abs(norms - 1.0).max() > NORM_TOLERANCE:
        raise ValueError(f"model {model.id} returned canary vectors with norms in [{norms.min():.4f}, "
                         f"{norms.max():.4f}], not unit vectors; refusing to save them as references")
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, lambda f: np.save(f, vectors))
    meta = {"model": model.id, "fingerprint": model.fingerprint, "texts_hash": digest, "n": len(texts),
            "dim": int(vectors.shape[1])}
    _atomic_write(meta_path, lambda f: f.write(json.dumps(meta, indent=2).encode()))
    return CanaryReference(model.id, model.fingerprint, digest, vectors, path), True


# --------------------------------------------------------------------------------------- deploy sanity check
@dataclass(frozen=True)
class SanityReport:
    model_id: str
    reference_model_id: str
    n: int
    mean_cosine: float
    min_cosine: float
    reference_norm_mean: float
    norm_mean: float
    max_norm_drift: float
    alerts: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.alerts

    def to_dict(self) -> dict:
        return {"model": self.model_id, "reference_model": self.reference_model_id, "n_canaries": self.n,
                "mean_cosine": self.mean_cosine, "min_cosine": self.min_cosine,
                "reference_norm_mean": self.reference_norm_mean, "norm_mean": self.norm_mean,
                "max_norm_drift": self.max_norm_drift, "alerts": list(self.alerts), "passed": self.passed,
                "thresholds": {"min_mean_cosine": SANITY_MIN_COSINE, "norm_tolerance": NORM_TOLERANCE}}


def deploy_sanity_check(encoder: Encoder, reference: CanaryReference, texts: list[str] | None = None, *,
                        min_cosine: float = SANITY_MIN_COSINE, norm_tolerance: float = NORM_TOLERANCE
                        ) -> SanityReport:
    """Re-embed the canaries with the serving encoder (cache bypassed) and compare with the references."""
    texts = load_canaries() if texts is None else texts
    if texts_hash(texts) != reference.texts_hash:
        raise ValueError(f"the canaries differ from those the references in {reference.path} were made from")
    new = np.asarray(encoder.encode(texts, use_cache=False, show_progress=False), dtype=np.float64)
    ref = reference.vectors.astype(np.float64)
    alerts = []
    if getattr(encoder, "fingerprint", reference.fingerprint) != reference.fingerprint:
        alerts.append(f"the serving model's fingerprint {encoder.fingerprint[:12]} differs from the reference "
                      f"model's {reference.fingerprint[:12]} ({reference.model_id})")
    if new.shape != ref.shape:
        alerts.append(f"the serving model returns {new.shape[1]}-d vectors, the references are {ref.shape[1]}-d: "
                      f"a different model is serving")
        return SanityReport(encoder.id, reference.model_id, len(texts), float("nan"), float("nan"),
                            float(np.linalg.norm(ref, axis=1).mean()), float(np.linalg.norm(new, axis=1).mean()),
                            float("nan"), tuple(alerts))
    new_norms, ref_norms = np.linalg.norm(new, axis=1), np.linalg.norm(ref, axis=1)
    cos = np.einsum("ij,ij->i", new, ref) / np.maximum(new_norms * ref_norms, 1e-12)
    drift = np.abs(new_norms - ref_norms)
    if cos.mean() < min_cosine:
        alerts.append(f"mean cosine to the references is {cos.mean():.4f} < {min_cosine}: the serving vectors "
                      f"changed (another model, tokenizer or pre-processing)")
    if drift.max() > norm_tolerance:
        alerts.append(f"vector norms drifted: mean norm {new_norms.mean():.4f} vs reference "
                      f"{ref_norms.mean():.4f}, largest change {drift.max():.4f} > {norm_tolerance} "
                      f"(a normalisation bug?)")
    return SanityReport(encoder.id, reference.model_id, len(texts), float(cos.mean()), float(cos.min()),
                        float(ref_norms.mean()), float(new_norms.mean()), float(drift.max()), tuple(alerts))


# -------------------------------------------------------------------------------------- cross-model drift
def classify(score: float) -> str:
    if score > INCREMENTAL_ABOVE:
        return "incremental"
    if score < BACKFILL_BELOW:
        return "full backfill"
    return "partial backfill"


def neighbour_sets(vectors: np.ndarray, k: int) -> np.ndarray:
    """Each row's top-k neighbours among the rows (itself excluded), as row indices (n, k)."""
    if not 0 < k < len(vectors):
        raise ValueError(f"k must be between 1 and {len(vectors) - 1}, got {k}")
    idx, _ = top_k_exact(vectors, vectors, k + 1)
    own = np.arange(len(vectors))[:, None]
    # Drop the row itself wherever it landed (ties can move it off the first place); keep k of the rest.
    return np.array([row[row != i][:k] for row, i in zip(idx, own[:, 0])])


def neighbour_jaccard(old: np.ndarray, new: np.ndarray, k: int = NEIGHBOURS_K) -> np.ndarray:
    a, b = neighbour_sets(old, k), neighbour_sets(new, k)
    return np.array([len(set(x) & set(y)) / len(set(x) | set(y)) for x, y in zip(a.tolist(), b.tolist())])


@dataclass(frozen=True)
class DriftReport:
    from_model: dict
    to_model: dict
    n: int
    k: int
    cosine: np.ndarray | None  # per canary, where dimensions match
    jaccard: np.ndarray  # per canary
    canaries_hash: str

    @property
    def measure(self) -> str:
        return "cosine" if self.cosine is not None else f"neighbour jaccard@{self.k}"

    @property
    def values(self) -> np.ndarray:
        return self.cosine if self.cosine is not None else self.jaccard

    @property
    def score(self) -> float:
        return float(self.values.mean())

    @property
    def classification(self) -> str:
        return classify(self.score)

    @staticmethod
    def _summary(x: np.ndarray | None) -> dict | None:
        if x is None:
            return None
        p = np.percentile(x, [1, 5, 25, 50, 75, 95])
        return {"mean": float(x.mean()), "min": float(x.min()), "p01": float(p[0]), "p05": float(p[1]),
                "p25": float(p[2]), "median": float(p[3]), "p75": float(p[4]), "p95": float(p[5])}

    def to_dict(self) -> dict:
        return {"from": self.from_model, "to": self.to_model, "n_canaries": self.n, "canaries_hash": self.canaries_hash,
                "measure": self.measure, "score": self.score, "classification": self.classification,
                "thresholds": {"incremental_above": INCREMENTAL_ABOVE, "full_backfill_below": BACKFILL_BELOW},
                "cosine": self._summary(self.cosine), f"jaccard@{self.k}": self._summary(self.jaccard)}


def _model_info(model: Encoder) -> dict:
    return {"model": model.id, "fingerprint": model.fingerprint, "dim": int(model.dim)}


def cross_model_drift(old: Encoder, new: Encoder, texts: list[str] | None = None, *, k: int = NEIGHBOURS_K
                      ) -> DriftReport:
    texts = load_canaries() if texts is None else texts
    a = np.asarray(old.encode(texts, show_progress=len(texts) > 2000), dtype=np.float32)
    b = np.asarray(new.encode(texts, show_progress=len(texts) > 2000), dtype=np.float32)
    cosine = None
    if a.shape == b.shape:
        na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
        cosine = np.einsum("ij,ij->i", a, b) / np.maximum(na * nb, 1e-12)
    return DriftReport(_model_info(old), _model_info(new), len(texts), k, cosine, neighbour_jaccard(a, b, k),
                       texts_hash(texts))
