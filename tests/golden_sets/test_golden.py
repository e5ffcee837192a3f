from __future__ import annotations

import pytest

from golden_sets.golden import ADS_IDS_FILE, GoldenSet, load_golden_set


@pytest.mark.parametrize("name, n_queries, n_docs", [
    ("scifact-test", 300, 5183), ("scifact-train", 809, 5183), ("scifact-test-ads", 124, 5183),
    ("mrpc-test-dedup", 1147, 3395),
])
def test_golden_set_sizes(name, n_queries, n_docs):
    golden = load_golden_set(name)
    assert len(golden.queries) == n_queries and len(golden.corpus) == n_docs
    assert set(golden.qrels) == set(golden.queries)


def test_ads_subset_is_the_documented_rule_and_the_committed_list():
    committed = [line for line in ADS_IDS_FILE.read_text().splitlines() if line and not line.startswith("#")]
    ads = load_golden_set("scifact-test-ads")
    assert sorted(ads.queries, key=int) == committed
    assert all(len(t.split()) <= 10 for t in ads.queries.values())
    assert set(ads.queries) < set(load_golden_set("scifact-test").queries)


def test_dedup_queries_are_corpus_items_and_partners_are_relevant():
    dedup = load_golden_set("mrpc-test-dedup")
    assert dedup.exclude_self
    for qid, rels in list(dedup.qrels.items())[:50]:
        assert dedup.corpus[qid] == dedup.queries[qid]
        assert all(d in dedup.corpus and d != qid for d in rels)


def test_unknown_golden_set_lists_the_valid_ones():
    with pytest.raises(ValueError, match="valid golden sets: scifact-test"):
        load_golden_set("msmarco")


def test_qrels_naming_unknown_documents_are_refused():
    bad = GoldenSet("x", "", corpus={"d1": "a"}, queries={"q": "b"}, qrels={"q": {"d1": 1, "ghost": 1}})
    with pytest.raises(ValueError, match="1 documents that are not in its corpus.*ghost"):
        bad.validate()


def test_content_hash_is_stable_and_sensitive():
    a = GoldenSet("x", "", corpus={"d1": "a"}, queries={"q": "b"}, qrels={"q": {"d1": 1}})
    b = GoldenSet("x", "", corpus={"d1": "a"}, queries={"q": "b"}, qrels={"q": {"d1": 2}})
    assert a.content_hash == GoldenSet("x", "", {"d1": "a"}, {"q": "b"}, {"q": {"d1": 1}}).content_hash
    assert a.content_hash != b.content_hash
