"""Fine-tune a cross-encoder reranker on SciFact *train* judgments, on the CPU, and register it.

Recipe (all seeded):
1. Split the train queries into train and dev by a seeded shuffle, after dropping any train query whose id or text
   is also a test query (SciFact's splits share two claim texts): test queries are never trained on.
2. Groups: for every judged (query, positive), `negatives` hard negatives from each of BM25 and dense retrieval,
   drawn from their top `mine_depth` with judged positives excluded (topped up from the other source if one runs
   short, so every group has the same size).
3. Train from the offline MiniLM weights (its transformer with a fresh one-logit head) with a listwise loss:
   sentence-transformers' cross-encoder `MultipleNegativesRankingLoss`, a softmax over each group's positive, its
   hard negatives and one random in-batch negative. Why not pointwise binary cross-entropy: tried first
   (scifact-minilm-v1: 5,183 pairs, 827 positives with 3 + 3 hard negatives per query, 324 steps), it collapsed to
   the class prior (every pair scored about logit -1.6 whatever the query; dev nDCG@10 of the reranked candidates
   fell from 0.741 to 0.269). Under a softmax
   per query a query-independent score gains nothing, so the model has to compare query and passage. AdamW with
   linear warm-up and decay, a 20x larger learning rate for the fresh head (at 5e-5 throughout, the listwise loss
   moved from 1.79 = ln 6 to only 1.75 in 61 steps: a near-zero head scores every candidate alike), in a plain loop rather than `CrossEncoderTrainer`: the trainer needs `datasets` and
   `accelerate`, which the workbench does not install.
4. Dev metric: nDCG@10 of the RRF(BM25, dense) candidates on the dev queries, before and after reranking the top
   `dev_depth` of them.
5. Save to `<home>/rerankers/<name>-v<N>/` (temp folder, then rename): weights in `model/`, `model_card.json` beside.
"""
from __future__ import annotations

import json
import logging
import os
import random
import shutil
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    name: str = "scifact-minilm"
    base_model: str = "minilm-l6-v2"  # embedding model id whose transformer initialises the cross-encoder
    dense_model: str = "minilm-l6-v2"  # embedding model that mines dense negatives
    golden_set: str = "scifact-train"
    max_queries: int | None = None  # use only the first N train queries (after the seeded shuffle)
    dev_fraction: float = 0.1
    negatives: int = 2  # hard negatives per (query, positive) group from each of BM25 and dense
    mine_depth: int = 20
    epochs: int = 1
    batch_size: int = 4  # groups per optimizer step (each group: 1 positive + 2 x negatives + 1 in-batch negative)
    max_length: int = 128  # tokens per pair: the query plus the title and opening of the abstract
    learning_rate: float = 1e-4  # the transformer
    head_learning_rate: float = 2e-3  # the fresh one-logit head: it starts near zero, so every candidate ties
    warmup_fraction: float = 0.1
    max_steps: int | None = None  # stop early after this many optimizer steps (tests, smoke runs)
    dev_depth: int = 30
    seed: int = 42

    def validate(self) -> None:
        from index_engines.models import get_spec
        from index_engines.rerank import check_reranker_name

        check_reranker_name(self.name)
        if get_spec(self.base_model).loader == "model2vec":
            raise ValueError(f"{self.base_model!r} is a static model with no transformer; a cross-encoder needs a "
                             f"transformer base such as minilm-l6-v2")
        get_spec(self.dense_model)  # unknown ids fail here, before any mining
        for key in ("negatives", "mine_depth", "epochs", "batch_size", "max_length", "dev_depth"):
            if getattr(self, key) <= 0:
                raise ValueError(f"{key} must be positive, got {getattr(self, key)}")
        if not 0 <= self.dev_fraction < 1:
            raise ValueError(f"dev_fraction must be in [0, 1), got {self.dev_fraction}")
        if self.max_queries is not None and self.max_queries < 2:
            raise ValueError("max_queries must be at least 2")
        if self.max_steps is not None and self.max_steps <= 0:
            raise ValueError("max_steps must be positive")


@dataclass
class TrainResult:
    info: object  # index_engines.rerank.RerankerInfo
    card: dict


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def queries_not_in_test(train, test) -> list[str]:
    """Train query ids whose id and text (case- and space-insensitive) are not test queries. SciFact's train and
    test splits share a few claim texts under different ids; those are dropped so no test query is trained on."""
    test_texts = {" ".join(t.lower().split()) for t in test.queries.values()}
    return [q for q, t in train.queries.items()
            if q not in test.queries and " ".join(t.lower().split()) not in test_texts]


def split_queries(qids: list[str], dev_fraction: float, seed: int, max_queries: int | None):
    order = sorted(qids)
    random.Random(seed).shuffle(order)
    if max_queries is not None:
        order = order[:max_queries]
    n_dev = int(round(len(order) * dev_fraction))
    return order[n_dev:], order[:n_dev]


def candidate_runs(golden, qids: list[str], depth: int, dense_model_id: str) -> dict[str, dict]:
    """BM25 and dense top-`depth` for the given queries: {"bm25": run, "dense": run}."""
    from golden_sets.evaluate import top_k_exact
    from index_engines.embedding import load_model
    from index_engines.lexical import BM25Index

    doc_ids = list(golden.corpus)
    bm25 = BM25Index()
    bm25.upsert(doc_ids, [golden.corpus[d] for d in doc_ids])
    model = load_model(dense_model_id)
    docs = model.encode([golden.corpus[d] for d in doc_ids])
    queries = model.encode([golden.queries[q] for q in qids])
    idx, scores = top_k_exact(docs, queries, depth)
    dense = {q: {doc_ids[j]: float(s) for j, s in zip(idx[i], scores[i])} for i, q in enumerate(qids)}
    lexical = {q: dict(bm25.search(golden.queries[q], depth)) for q in qids}
    return {"bm25": lexical, "dense": dense}


def training_groups(golden, qids, runs, negatives: int, seed: int) -> list[tuple[str, str, list[str]]]:
    """(query text, positive passage, hard negative passages) per judged positive, shuffled with the seed. Every
    group has 2 x `negatives` negatives: `negatives` from each source, topped up from the others' pools."""
    rng = random.Random(seed)
    want = negatives * len(runs)
    groups = []
    for q in qids:
        positives = sorted(d for d, rel in golden.qrels[q].items() if rel > 0)
        pools = {s: [d for d in runs[s][q] if d not in positives] for s in sorted(runs)}
        for pos in positives:
            chosen: list[str] = []
            for source in sorted(pools):
                pool = [d for d in pools[source] if d not in chosen]
                chosen += rng.sample(pool, min(negatives, len(pool)))
            rest = [d for s in sorted(pools) for d in pools[s] if d not in chosen]
            chosen += rng.sample(sorted(set(rest)), min(want - len(chosen), len(set(rest))))
            if len(chosen) == want:
                groups.append((golden.queries[q], golden.corpus[pos], [golden.corpus[d] for d in chosen]))
    rng.shuffle(groups)
    return groups


def dev_metric(golden, dev_qids, runs, reranker, depth: int) -> dict:
    """nDCG@10 on the dev queries: RRF(BM25, dense) candidates before and after reranking their top `depth`."""
    from golden_sets.metrics import evaluate
    from index_engines.fusion import fuse

    fused, reranked = {}, {}
    for q in dev_qids:
        hits = fuse({s: runs[s][q] for s in runs}, "rrf")
        fused[q] = {h.id: h.score for h in hits}
        top = hits[:depth]
        scored = reranker.rerank(golden.queries[q], [(h.id, golden.corpus[h.id]) for h in top])
        # reranked head above the untouched tail, so the list stays as long as the fused one
        reranked[q] = {d: float(len(scored) - i) + 1e6 for i, (d, _) in enumerate(scored)}
        reranked[q].update({h.id: h.score for h in hits[depth:]})
    qrels = {q: golden.qrels[q] for q in dev_qids}
    before = evaluate(qrels, fused, ["ndcg@10"], complete=True)["ndcg@10"].mean
    after = evaluate(qrels, reranked, ["ndcg@10"], complete=True)["ndcg@10"].mean
    return {"queries": len(dev_qids), "depth": depth, "ndcg@10_fused": before, "ndcg@10_reranked": after}


def _train_loop(model, groups, config: TrainConfig, progress: bool) -> dict:
    import torch
    from sentence_transformers.cross_encoder.losses import MultipleNegativesRankingLoss
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

    loss_fn = MultipleNegativesRankingLoss(model, num_negatives=1)
    batches = [groups[i:i + config.batch_size] for i in range(0, len(groups), config.batch_size)]
    total = len(batches) * config.epochs
    if config.max_steps is not None:
        total = min(total, config.max_steps)
    head = [p for n, p in model.named_parameters() if "classifier" in n]
    body = [p for n, p in model.named_parameters() if "classifier" not in n]
    if not head:
        raise ValueError("the cross-encoder has no 'classifier' head to train; use a BERT-style transformer base")
    optimizer = torch.optim.AdamW([{"params": body, "lr": config.learning_rate},
                                   {"params": head, "lr": config.head_learning_rate}], weight_decay=0.01)
    schedule = get_linear_schedule_with_warmup(optimizer, int(config.warmup_fraction * total), total)
    model.train()
    losses, step = [], 0
    with tqdm(total=total, desc=f"train {config.name}", unit="step", disable=not progress) as bar:
        for epoch in range(config.epochs):
            order = list(range(len(batches)))
            random.Random(config.seed + epoch).shuffle(order)
            for b in order:
                if step >= total:
                    break
                batch = batches[b]
                columns = [[q for q, _, _ in batch], [p for _, p, _ in batch]]
                columns += [[negs[j] for _, _, negs in batch] for j in range(len(batch[0][2]))]
                loss = loss_fn(columns, torch.zeros(len(batch)))
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                schedule.step()
                optimizer.zero_grad()
                losses.append(float(loss.detach()))
                step += 1
                bar.update(1)
                bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
    model.eval()
    return {"loss": "MultipleNegativesRankingLoss (listwise, 1 in-batch negative)", "steps": step,
            "loss_first_20": float(np.mean(losses[:20])), "loss_last_20": float(np.mean(losses[-20:]))}


def train_reranker(config: TrainConfig = TrainConfig(), *, progress: bool = True) -> TrainResult:
    config.validate()  # before the heavy imports and the mining: bad input fails in milliseconds
    import torch
    from sentence_transformers import CrossEncoder

    from golden_sets.golden import load_golden_set
    from index_engines.models import compute_fingerprint, fingerprint, get_spec, model_path
    from index_engines.rerank import CARD_FILE, WEIGHTS_DIR, Reranker, next_version, rerankers_dir, resolve_reranker

    started = time.perf_counter()
    seed_everything(config.seed)
    golden = load_golden_set(config.golden_set)
    usable = queries_not_in_test(golden, load_golden_set("scifact-test"))
    train_q, dev_q = split_queries(usable, config.dev_fraction, config.seed, config.max_queries)
    runs = candidate_runs(golden, train_q + dev_q, max(config.mine_depth, 100 if dev_q else 0),
                          config.dense_model)
    mining = {s: {q: dict(list(r[q].items())[:config.mine_depth]) for q in train_q} for s, r in runs.items()}
    groups = training_groups(golden, train_q, mining, config.negatives, config.seed)

    base_spec = get_spec(config.base_model)
    model = CrossEncoder(str(model_path(base_spec)), num_labels=1, device="cpu", local_files_only=True,
                         max_length=config.max_length)
    seed_everything(config.seed)  # the fresh head is initialised above; training order below
    t0 = time.perf_counter()
    stats = _train_loop(model, groups, config, progress)
    train_seconds = time.perf_counter() - t0

    root = rerankers_dir()
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{config.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        model.save_pretrained(str(tmp / WEIGHTS_DIR))
        card = {
            "name": config.name,
            "base_model": {"id": base_spec.id, "fingerprint": fingerprint(base_spec)},
            "data": {"golden_set": config.golden_set, "golden_set_hash": golden.content_hash,
                     "train_queries": len(train_q), "dev_queries": len(dev_q), "groups": len(groups),
                     "scored_pairs_per_group": 2 + (len(groups[0][2]) if groups else 0),  # pos + hard + in-batch
                     "negatives_from": {"bm25": config.negatives, "dense": config.negatives,
                                        "mine_depth": config.mine_depth, "dense_model": config.dense_model},
                     "dropped_as_test_queries": len(golden.queries) - len(usable),
                     "test_queries_excluded": "scifact-test (train queries sharing a test id or text dropped)"},
            "training": {**asdict(config), **stats, "seconds": round(train_seconds, 1),
                         "torch_threads": torch.get_num_threads()},
            "trained_fingerprint": compute_fingerprint(tmp / WEIGHTS_DIR),
        }
        (tmp / CARD_FILE).write_text(json.dumps(card, indent=2, default=str))
        while True:  # claim the next free version; a concurrent job that took it makes rename fail
            version = next_version(config.name)
            try:
                os.rename(tmp, root / f"{config.name}-v{version}")
                break
            except OSError:
                continue
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    info = resolve_reranker(f"{config.name}-v{version}")
    if dev_q:
        card["dev"] = dev_metric(golden, dev_q, runs, Reranker(info.path), config.dev_depth)
    card["total_seconds"] = round(time.perf_counter() - started, 1)
    card["version"] = version
    tmp_card = info.path / f".{CARD_FILE}.tmp"
    tmp_card.write_text(json.dumps(card, indent=2, default=str))
    os.replace(tmp_card, info.path / CARD_FILE)
    log.info("saved reranker %s to %s", info.ref, info.path)
    return TrainResult(resolve_reranker(info.ref), card)
