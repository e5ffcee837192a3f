"""Reranker training: a tiny real run (two steps) that saves, registers, reloads offline, scores deterministically."""
from __future__ import annotations

import json

import numpy as np
import pytest

from experiments.train_reranker import (TrainConfig, queries_not_in_test, split_queries, train_reranker,
                                        training_groups)

TINY = TrainConfig(name="tiny", max_queries=8, dev_fraction=0.25, negatives=1, mine_depth=5, batch_size=2,
                   max_length=64, max_steps=2, dense_model="static-64", dev_depth=5, seed=3)
PASSAGES = ["Insulin resistance is associated with type 2 diabetes.", "Vitamin D deficiency and bone density.",
            "Kinase inhibitors slow tumour growth in mice."]


@pytest.fixture(scope="module")
def trained():
    return train_reranker(TINY, progress=False)


def test_training_registers_a_versioned_reranker_with_a_model_card(trained):
    card = json.loads((trained.info.path / "model_card.json").read_text())
    assert trained.info.ref.startswith("tiny-v") and trained.info.path.name == trained.info.ref
    assert card["data"]["golden_set"] == "scifact-train" and card["data"]["train_queries"] == 6
    assert card["data"]["groups"] >= 6
    assert card["data"]["scored_pairs_per_group"] == 4  # the positive, 1 + 1 hard negatives, 1 in-batch negative
    assert card["data"]["dev_queries"] == 2 and card["data"]["dropped_as_test_queries"] == 2
    assert card["training"]["steps"] == 2 and card["training"]["seed"] == 3
    assert card["base_model"]["id"] == "minilm-l6-v2" and len(card["base_model"]["fingerprint"]) == 64
    assert card["trained_fingerprint"] != card["base_model"]["fingerprint"]
    assert 0 <= card["dev"]["ndcg@10_reranked"] <= 1


def test_trained_reranker_reloads_offline_and_scores_deterministically(trained):
    from index_engines.rerank import Reranker, load_reranker

    first = Reranker(trained.info.path)
    again = Reranker(trained.info.path)  # a second, independent load from the folder
    assert first.fingerprint == again.fingerprint == trained.card["trained_fingerprint"]
    a = first.score("insulin and diabetes", PASSAGES)
    assert np.array_equal(a, first.score("insulin and diabetes", PASSAGES))
    assert np.array_equal(a, again.score("insulin and diabetes", PASSAGES))
    assert first.max_length == TINY.max_length  # scoring uses the training length from the card
    assert load_reranker(trained.info.ref).path == trained.info.path


def test_cli_lists_registered_rerankers(trained, capsys):
    from workbench.cli import main

    assert main(["train-reranker", "--list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert trained.info.ref in [r["reranker"] for r in rows]


def test_test_queries_are_never_training_queries():
    from golden_sets.golden import load_golden_set

    train, test = load_golden_set("scifact-train"), load_golden_set("scifact-test")
    usable = queries_not_in_test(train, test)
    test_texts = {" ".join(t.lower().split()) for t in test.queries.values()}
    assert len(usable) == len(train.queries) - 2  # SciFact's splits share two claim texts
    assert not any(" ".join(train.queries[q].lower().split()) in test_texts for q in usable)
    tr, dev = split_queries(usable, 0.1, 42, None)
    assert not set(tr) & set(dev) and len(tr) + len(dev) == len(usable)
    assert split_queries(usable, 0.1, 42, None) == (tr, dev)


def test_groups_hold_a_judged_positive_and_unjudged_hard_negatives():
    from golden_sets.golden import load_golden_set

    g = load_golden_set("scifact-train")
    qids = sorted(g.queries)[:5]
    pool = list(g.corpus)[:10]
    runs = {"bm25": {q: {d: 1.0 for d in list(g.qrels[q]) + pool[:6]} for q in qids},
            "dense": {q: {d: 1.0 for d in pool[4:]} for q in qids}}
    groups = training_groups(g, qids, runs, negatives=2, seed=1)
    assert len(groups) == sum(len(g.qrels[q]) for q in qids)  # one group per judged positive
    text_to_id = {t: d for d, t in g.corpus.items()}
    for query, pos, negs in groups:
        q = next(q for q in qids if g.queries[q] == query)
        assert text_to_id[pos] in g.qrels[q]
        assert len(negs) == 4 and len(set(negs)) == 4
        assert not {text_to_id[n] for n in negs} & set(g.qrels[q])
    assert training_groups(g, qids, runs, negatives=2, seed=1) == groups


@pytest.mark.parametrize("bad,match", [({"negatives": 0}, "negatives must be positive"),
                                       ({"name": "Bad Name"}, "reranker name"),
                                       ({"dev_fraction": 1.0}, "dev_fraction"),
                                       ({"base_model": "static-64"}, "needs a transformer")])
def test_bad_training_config_is_rejected(bad, match):
    cfg = TrainConfig(**{**TINY.__dict__, **bad})
    with pytest.raises(ValueError, match=match):
        train_reranker(cfg, progress=False)  # fails in validation, before mining or loading anything


@pytest.mark.slow
def test_same_seed_same_weights():
    a = train_reranker(TINY, progress=False)
    b = train_reranker(TINY, progress=False)
    assert a.info.ref != b.info.ref
    assert a.card["trained_fingerprint"] == b.card["trained_fingerprint"]


@pytest.mark.slow
def test_hybrid_benchmark_reranks_with_a_registered_reranker(trained):
    import argparse

    from experiments.benchmarks import hybrid

    args = argparse.Namespace(golden="scifact-test", model="static-64", consumer="search", fusion=None,
                              candidates=100, reranker=trained.info.ref, rerank_depth=5, no_rerank=False,
                              train_if_missing=False, max_queries=4, qps_repeats=1, latency_samples=1)
    result = hybrid.run(args)
    assert result["reranker"]["ref"] == trained.info.ref and result["rerank_depth"] == 5
    assert result["ndcg_at_10"]["hybrid_rerank"] is not None
    # reranking reorders only the top 5 of the same hybrid list, so recall@100 cannot change
    assert result["recall_at_100"]["hybrid_rerank"] == result["recall_at_100"]["hybrid"]
    assert result["rerank_ms_per_100"] > 0 and result["rerank_latency_model"] == trained.info.ref
