"""BM25 index: equality with rank-bm25 (the reference) through writes, deletes, compaction and persistence."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rank_bm25 import BM25Okapi

from index_engines.lexical import BM25Index, BM25Params, EmptyQueryError, Tokenizer

PARAMS = BM25Params(k1=0.9, b=0.4, epsilon=0.25)


@pytest.fixture(scope="module")
def scifact_small():
    """400 real SciFact abstracts and 40 real queries (the corpus head, so it holds judged documents)."""
    from golden_sets.golden import load_golden_set

    g = load_golden_set("scifact-test")
    ids = list(g.corpus)[:400]
    return ids, [g.corpus[d] for d in ids], list(g.queries.values())[:40]


def reference_scores(tokenizer, ids, texts, queries, params=PARAMS):
    """rank-bm25 over exactly these documents: query -> {id: score}."""
    ref = BM25Okapi([tokenizer.tokenize(t) for t in texts], k1=params.k1, b=params.b, epsilon=params.epsilon)
    return {q: dict(zip(ids, ref.get_scores(tokenizer.tokenize(q)))) for q in queries}


def assert_matches_reference(index, ids, texts, queries):
    expected = reference_scores(index.tokenizer, ids, texts, queries)
    for q in queries:
        ours = index.scores(q)
        assert set(ours) == set(ids)
        diff = max(abs(ours[d] - expected[q][d]) for d in ids)
        assert diff < 1e-6, (q, diff)


def test_tokenizer_equals_bm25s_pipeline(scifact_small):
    import bm25s
    import Stemmer

    _, texts, queries = scifact_small
    sample = texts[:150] + queries
    expected = bm25s.tokenize(sample, lower=True, stopwords="en", stemmer=Stemmer.Stemmer("english"),
                              return_ids=False, show_progress=False)
    assert Tokenizer().tokenize_many(sample) == [list(t) for t in expected]


def test_tokenizer_lowercases_drops_stopwords_and_stems():
    assert Tokenizer().tokenize("The Studies of RUNNING cells, a b") == ["studi", "run", "cell"]
    assert Tokenizer(stemmer=None).tokenize("The Studies") == ["studies"]


def test_scores_equal_rank_bm25_before_and_after_deletes(scifact_small):
    ids, texts, queries = scifact_small
    index = BM25Index(PARAMS)
    index.upsert(ids, texts)
    assert_matches_reference(index, ids, texts, queries)

    rng = np.random.default_rng(7)
    dead = set(rng.choice(ids, 120, replace=False).tolist())
    assert index.delete(sorted(dead) + ["not-there"]) == len(dead)
    survivors = [(d, t) for d, t in zip(ids, texts) if d not in dead]
    s_ids, s_texts = [d for d, _ in survivors], [t for _, t in survivors]
    assert index.n_tombstones == len(dead)
    assert_matches_reference(index, s_ids, s_texts, queries)  # tombstoned state

    before = {q: index.search(q, 20) for q in queries}
    assert index.compact() == len(dead)
    assert index.n_tombstones == 0
    assert_matches_reference(index, s_ids, s_texts, queries)  # compacted state
    assert {q: index.search(q, 20) for q in queries} == before  # compaction does not change results


def test_upsert_replaces_a_document(scifact_small):
    ids, texts, queries = scifact_small
    index = BM25Index(PARAMS)
    index.upsert(ids[:100], texts[:100])
    index.upsert([ids[0], ids[1]], [texts[200], texts[201]])  # new text under old ids
    expected_texts = [texts[200], texts[201]] + texts[2:100]
    assert len(index) == 100 and index.n_tombstones == 2
    # rank-bm25 scores are positional: reorder ours to the same ids
    assert_matches_reference(index, ids[:100], expected_texts, queries[:10])


def test_incremental_batches_equal_one_build(scifact_small):
    """Small seal thresholds exercise sealed + delta postings and several merges."""
    ids, texts, queries = scifact_small
    whole = BM25Index(PARAMS)
    whole.upsert(ids, texts)
    parts = BM25Index(PARAMS, seal_min=16, seal_fraction=0.5)
    for start in range(0, len(ids), 37):
        parts.upsert(ids[start:start + 37], texts[start:start + 37])
    stats = parts.stats()
    assert stats["delta_positions"] > 0  # the last batches are still in the delta
    for q in queries:
        assert parts.search(q, 50) == whole.search(q, 50)


def test_epsilon_floor_for_terms_in_most_documents():
    """A term in more than half the documents has negative idf; rank-bm25 floors it at epsilon * mean idf."""
    texts = ["protein folding kinase", "protein binding site", "protein kinase inhibitor", "gene expression",
             "protein structure"]
    ids = [f"d{i}" for i in range(len(texts))]
    index = BM25Index(PARAMS)
    index.upsert(ids, texts)
    assert_matches_reference(index, ids, texts, ["protein kinase", "protein", "gene protein protein"])


def test_allow_list_restricts_results(scifact_small):
    ids, texts, queries = scifact_small
    index = BM25Index(PARAMS)
    index.upsert(ids, texts)
    allowed = set(ids[::3])
    for q in queries[:10]:
        hits = index.search(q, 30, allow=allowed | {"unknown-id"})
        assert hits and {d for d, _ in hits} <= allowed
        full = [h for h in index.search(q, len(ids)) if h[0] in allowed][:30]
        assert hits == full  # the allow-list filters exactly, not approximately
    assert index.search(queries[0], 10, allow=[]) == []


def test_results_are_ordered_and_ties_break_by_id():
    index = BM25Index(PARAMS)
    index.upsert(["c", "a", "b", "d"], ["kinase", "kinase", "kinase", "unrelated words"])
    hits = index.search("kinase", 10)
    assert [d for d, _ in hits] == ["a", "b", "c"]  # equal scores, id ascending; "d" shares no term
    assert index.search("kinase", 2) == hits[:2]
    assert index.search("unseen", 5) == []


def test_save_load_round_trip_keeps_tombstones(tmp_path, scifact_small):
    ids, texts, queries = scifact_small
    index = BM25Index(PARAMS, seal_min=32)
    index.upsert(ids[:150], texts[:150])
    index.upsert(ids[150:170], texts[150:170])  # some in the delta
    index.delete(ids[:10])
    index.save(tmp_path / "bm25")
    index.save(tmp_path / "bm25")  # replacing an existing save works
    loaded = BM25Index.load(tmp_path / "bm25")
    assert len(loaded) == len(index) == 160 and loaded.n_tombstones == 10
    assert loaded.tokenizer == index.tokenizer and loaded.params == index.params
    for q in queries[:15]:
        assert loaded.search(q, 25) == index.search(q, 25)
    loaded.upsert(["new"], [texts[300]])  # a loaded index keeps taking writes
    assert "new" in loaded and ids[0] not in loaded


def test_integer_ids_work_like_string_ids(tmp_path):
    index = BM25Index(PARAMS)
    index.upsert(np.array([7, 3, 5, 1, 2]), ["kinase", "kinase", "kinase inhibitor", "gene", "virus"])
    assert [d for d, _ in index.search("kinase", 5)] == [3, 7, 5]  # tie broken by id; longer document last
    assert index.search("kinase", 5, allow=np.array([5, 7, 99]))[0][0] in (5, 7)
    index.save(tmp_path / "ints", extra={"lsn": 12})
    assert BM25Index.read_meta(tmp_path / "ints")["extra"] == {"lsn": 12}
    assert BM25Index.load(tmp_path / "ints").search("kinase", 5) == index.search("kinase", 5)


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no BM25 index"):
        BM25Index.load(tmp_path / "nothing")


@pytest.mark.parametrize("query", ["", "   ", "the of and", "a , ; !"])
def test_empty_or_stopword_only_queries_are_rejected(query):
    index = BM25Index()
    index.upsert(["a"], ["kinase inhibitors"])
    with pytest.raises(EmptyQueryError, match="empty|no searchable term"):
        index.search(query, 5)


def test_bad_input_is_rejected():
    index = BM25Index()
    with pytest.raises(ValueError, match="one text per id"):
        index.upsert(["a", "b"], ["only one"])
    with pytest.raises(ValueError, match="duplicate id"):
        index.upsert(["a", "a"], ["x y", "z w"])
    with pytest.raises(ValueError, match="non-empty string or an integer"):
        index.upsert([-3], ["x y"])
    index.upsert(["a"], ["x y"])
    with pytest.raises(ValueError, match="string ids or integer ids, not both"):
        index.upsert([3], ["x y"])
    with pytest.raises(ValueError, match="must be a string"):
        index.upsert(["a"], [None])
    with pytest.raises(ValueError, match="k must be a positive integer"):
        index.search("kinase", 0)
    with pytest.raises(ValueError, match="b must be between"):
        BM25Params(b=2)


# ------------------------------------------------------------------------------------------------ property test
WORDS = ["kinase", "protein", "cell", "gene", "tumor", "binding", "receptor", "insulin", "dna", "virus"]
doc_text = st.lists(st.sampled_from(WORDS), min_size=0, max_size=8).map(" ".join)
op = st.one_of(
    st.tuples(st.just("upsert"), st.lists(st.tuples(st.integers(0, 14), doc_text), min_size=1, max_size=5,
                                          unique_by=lambda x: x[0])),
    st.tuples(st.just("delete"), st.lists(st.integers(0, 14), min_size=1, max_size=4, unique=True)),
    st.tuples(st.just("compact"), st.none()),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(op, min_size=1, max_size=12), query=st.lists(st.sampled_from(WORDS), min_size=1, max_size=3))
def test_any_write_sequence_scores_like_a_fresh_rank_bm25(ops, query):
    index = BM25Index(PARAMS, seal_min=2, seal_fraction=0.5)
    live: dict[str, str] = {}
    for kind, arg in ops:
        if kind == "upsert":
            index.upsert([f"d{i}" for i, _ in arg], [t for _, t in arg])
            live.update({f"d{i}": t for i, t in arg})
        elif kind == "delete":
            index.delete([f"d{i}" for i in arg])
            for i in arg:
                live.pop(f"d{i}", None)
        else:
            index.compact()
    assert len(index) == len(live) and set(index.ids) == set(live)
    if not live:
        assert index.search(query, 5) == []
        return
    ids = sorted(live)
    if not any(live.values()):  # rank-bm25 divides by zero on a corpus without a single token
        assert set(index.scores(query).values()) == {0.0}
        return
    assert_matches_reference(index, ids, [live[d] for d in ids], [" ".join(query)])
