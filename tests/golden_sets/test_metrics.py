"""Our metrics vs pytrec_eval (the trec_eval bindings) on a real SciFact run, to 1e-9."""
from __future__ import annotations

import math

import numpy as np
import pytest
import pytrec_eval

from golden_sets.evaluate import ExactRetriever
from golden_sets.golden import load_golden_set
from golden_sets.metrics import ann_recall_at_k, evaluate, parse_metric, rank_documents

KS = (1, 5, 10, 100)


@pytest.fixture(scope="module")
def scifact_run(static_model):
    golden = load_golden_set("scifact-test")
    run = ExactRetriever(static_model).retrieve(golden, 100)
    return golden.qrels, run


def _reference(qrels, run, k):
    measures = {f"recall.{k}", f"P.{k}", f"ndcg_cut.{k}", f"map_cut.{k}"}
    ref = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    # recip_rank has no cutoff in trec_eval: truncate the run to the top k in trec_eval order first.
    truncated = {q: {d: docs[d] for d in rank_documents(docs)[:k]} for q, docs in run.items()}
    rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(truncated)
    return {
        f"recall@{k}": {q: v[f"recall_{k}"] for q, v in ref.items()},
        f"precision@{k}": {q: v[f"P_{k}"] for q, v in ref.items()},
        f"ndcg@{k}": {q: v[f"ndcg_cut_{k}"] for q, v in ref.items()},
        f"map@{k}": {q: v[f"map_cut_{k}"] for q, v in ref.items()},
        f"mrr@{k}": {q: v["recip_rank"] for q, v in rr.items()},
    }


def _assert_agrees(qrels, run):
    for k in KS:
        ref = _reference(qrels, run, k)
        ours = evaluate(qrels, run, list(ref))
        for name, per_query in ref.items():
            assert set(ours[name].per_query) == set(per_query), name
            for q, v in per_query.items():
                assert ours[name].per_query[q] == pytest.approx(v, abs=1e-9), (name, q)
            assert ours[name].mean == pytest.approx(np.mean(list(per_query.values())), abs=1e-9)


def test_agrees_with_trec_eval_on_a_real_run(scifact_run):
    qrels, run = scifact_run
    # The run must include queries where nothing relevant was retrieved in the top 10, or the test proves less.
    assert any(not any(qrels[q].get(d, 0) > 0 for d in rank_documents(run[q])[:10]) for q in qrels)
    _assert_agrees(qrels, run)


def test_agrees_with_trec_eval_with_ties(scifact_run):
    qrels, run = scifact_run
    # Round scores to one decimal: many ties, broken by trec_eval's document-id order.
    tied = {q: {d: round(s, 1) for d, s in docs.items()} for q, docs in run.items()}
    n_ties = sum(len(docs) - len(set(docs.values())) for docs in tied.values())
    assert n_ties > 1000
    _assert_agrees(qrels, tied)


def test_agrees_with_trec_eval_with_graded_relevance(scifact_run):
    qrels, run = scifact_run
    graded = {}
    for q, rels in qrels.items():
        top = rank_documents(run[q])[:20]
        graded[q] = {d: 1 + (int(d) % 3) for d in rels}  # grades 1..3 on the real judgments
        graded[q].update({d: (int(d) % 2) for d in top[5:8] if d not in rels})  # some judged 0/1 extras
    _assert_agrees(graded, run)


def test_query_missing_from_run_counts_zero_only_when_complete(scifact_run):
    qrels, run = scifact_run
    partial = dict(list(run.items())[:-10])
    default = evaluate(qrels, partial, ["recall@10"])["recall@10"]
    complete = evaluate(qrels, partial, ["recall@10"], complete=True)["recall@10"]
    assert len(default.per_query) == len(qrels) - 10
    assert len(complete.per_query) == len(qrels)
    assert complete.mean == pytest.approx(default.mean * (len(qrels) - 10) / len(qrels))


def test_hand_computed_values():
    qrels = {"q": {"a": 2, "b": 1, "c": 0}}
    run = {"q": {"x": 0.9, "a": 0.8, "c": 0.7, "b": 0.6}}
    r = evaluate(qrels, run, ["ndcg@3", "mrr@3", "map@4", "precision@2", "recall@3"])
    dcg = 2 / math.log2(3)
    idcg = 2 / math.log2(2) + 1 / math.log2(3)
    assert r["ndcg@3"].mean == pytest.approx(dcg / idcg)
    assert r["mrr@3"].mean == pytest.approx(1 / 2)
    assert r["map@4"].mean == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert r["precision@2"].mean == pytest.approx(1 / 2)
    assert r["recall@3"].mean == pytest.approx(1 / 2)


def test_ties_break_by_doc_id_descending():
    assert rank_documents({"a": 1.0, "c": 1.0, "b": 2.0}) == ["b", "c", "a"]


def test_ann_recall():
    approx = np.array([[1, 2, 3], [4, 5, -1]])
    exact = np.array([[3, 2, 9], [4, 5, 6]])
    assert ann_recall_at_k(approx, exact, 3).tolist() == pytest.approx([2 / 3, 2 / 3])
    with pytest.raises(ValueError, match="k must be positive"):
        ann_recall_at_k(approx, exact, 0)


@pytest.mark.parametrize("bad", ["ndcg", "ndcg@0", "foo@10", "recall@x"])
def test_unknown_metric_names_the_valid_ones(bad):
    with pytest.raises(ValueError, match="valid metrics are recall@K"):
        parse_metric(bad)
