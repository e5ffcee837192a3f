"""Consumer specs: one YAML file per consumer in `golden_sets/consumers/`.

A consumer (a team that calls the retrieval service) names its golden set, the k it reads, its quality metrics
with targets, its ANN-recall target (recall@k of the served index vs exact search on the same model), and its p95
latency target. Targets are set from a measured baseline; each file says how.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from .golden import GOLDEN_SET_NAMES
from .metrics import parse_metric

CONSUMERS_DIR = Path(__file__).parent / "consumers"


@dataclass(frozen=True)
class QualityTarget:
    metric: str  # e.g. "ndcg@10"
    target: float


@dataclass(frozen=True)
class ConsumerSpec:
    name: str
    description: str
    golden_set: str
    k: int
    candidate_pool: int  # how many results the consumer retrieves (>= k and >= every metric's cutoff)
    quality: tuple[QualityTarget, ...]  # the first is the primary metric
    ann_recall_target: float
    latency_p95_ms: float
    fusion: str = "rrf"  # default fusion for hybrid retrieval (rrf | weighted)

    @property
    def primary(self) -> QualityTarget:
        return self.quality[0]

    @property
    def metrics(self) -> list[str]:
        return [q.metric for q in self.quality]


def _require(data: dict, key: str, path: Path):
    if key not in data:
        raise ValueError(f"{path}: consumer spec is missing {key!r}")
    return data[key]


def _as_fraction(value, what: str, path: Path) -> float:
    if not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{path}: {what} must be a number between 0 and 1, got {value!r}")
    return float(value)


def parse_consumer(data: dict, path: Path) -> ConsumerSpec:
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a consumer spec is a YAML mapping")
    golden = _require(data, "golden_set", path)
    if golden not in GOLDEN_SET_NAMES:
        raise ValueError(f"{path}: unknown golden set {golden!r}; valid: {', '.join(GOLDEN_SET_NAMES)}")
    k = _require(data, "k", path)
    if not isinstance(k, int) or k <= 0:
        raise ValueError(f"{path}: k must be a positive integer, got {k!r}")
    quality_raw = _require(data, "quality", path)
    if not isinstance(quality_raw, list) or not quality_raw:
        raise ValueError(f"{path}: 'quality' must list at least one {{metric, target}}; a consumer with no "
                         f"target cannot be gated")
    quality = []
    for q in quality_raw:
        if not isinstance(q, dict) or "metric" not in q or "target" not in q:
            raise ValueError(f"{path}: each quality entry needs 'metric' and 'target', got {q!r}")
        parse_metric(q["metric"])
        quality.append(QualityTarget(q["metric"], _as_fraction(q["target"], f"target of {q['metric']}", path)))
    pool = int(data.get("candidate_pool", k))
    cutoffs = [parse_metric(q.metric)[1] for q in quality] + [k]
    if pool < max(cutoffs):
        raise ValueError(f"{path}: candidate_pool ({pool}) must be at least k and every metric cutoff "
                         f"({max(cutoffs)})")
    latency = _require(data, "latency_p95_ms", path)
    if not isinstance(latency, (int, float)) or latency <= 0:
        raise ValueError(f"{path}: latency_p95_ms must be a positive number, got {latency!r}")
    fusion = data.get("fusion", "rrf")
    if fusion not in ("rrf", "weighted"):
        raise ValueError(f"{path}: fusion must be 'rrf' or 'weighted', got {fusion!r}")
    return ConsumerSpec(
        name=_require(data, "name", path), description=str(data.get("description", "")), golden_set=golden,
        k=k, candidate_pool=pool, quality=tuple(quality),
        ann_recall_target=_as_fraction(_require(data, "ann_recall_target", path), "ann_recall_target", path),
        latency_p95_ms=float(latency), fusion=fusion,
    )


def load_consumer_file(path: Path) -> ConsumerSpec:
    with open(path, encoding="utf-8") as f:
        try:
            data = yaml.safe_load(f)
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: not valid YAML ({exc})") from None
    spec = parse_consumer(data, path)
    if spec.name != path.stem:
        raise ValueError(f"{path}: name {spec.name!r} must match the file name {path.stem!r}")
    return spec


def consumer_names(directory: Path = CONSUMERS_DIR) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.yaml"))


def load_consumer(name: str, directory: Path = CONSUMERS_DIR) -> ConsumerSpec:
    path = directory / f"{name}.yaml"
    if not path.exists():
        raise ValueError(f"unknown consumer {name!r}; valid consumers: {', '.join(consumer_names(directory))}")
    return load_consumer_file(path)


def load_consumers(names: list[str] | None = None, directory: Path = CONSUMERS_DIR) -> list[ConsumerSpec]:
    return [load_consumer(n, directory) for n in (names or consumer_names(directory))]
