from __future__ import annotations

import gzip

import pytest

from golden_sets.loaders import (DataFormatError, load_beir, load_beir_corpus, load_mrpc, load_qrels, load_sts,
                                 load_trec_run, write_trec_run)
from index_engines.settings import get_settings

DATA = get_settings().datasets


def test_scifact_counts_match_the_data_card():
    test = load_beir(DATA / "scifact", "test")
    assert len(test.corpus) == 5183 and len(test.queries) == 1109
    assert len(test.qrels) == 300 and sum(map(len, test.qrels.values())) == 339
    train = load_beir(DATA / "scifact", "train")
    assert len(train.qrels) == 809 and sum(map(len, train.qrels.values())) == 919


def test_mrpc_and_sts_counts():
    mrpc = load_mrpc(DATA / "mrpc" / "msr_paraphrase_test.txt.gz")
    assert len(mrpc) == 1725 and sum(p.label for p in mrpc) == 1147
    assert not mrpc[0].id1.startswith("\ufeff")  # the byte-order mark is not part of the first id
    sts = load_sts(DATA / "stsbenchmark" / "sts-test.csv.gz")
    assert len(sts) == 1379 and all(0 <= p.label <= 5 for p in sts)


def test_unknown_split_lists_the_available_ones():
    with pytest.raises(FileNotFoundError, match=r"available splits: \['test', 'train'\]"):
        load_beir(DATA / "scifact", "dev")


def test_trec_run_round_trip(tmp_path):
    run = {"q1": {"d1": 1.5, "d2": 0.25}, "q2": {"d3": -1.0}}
    write_trec_run(run, tmp_path / "run.txt")
    assert load_trec_run(tmp_path / "run.txt") == run


def test_trec_and_beir_qrels(tmp_path):
    (tmp_path / "q.trec").write_text("1 0 d1 2\n1 0 d2 0\n2 0 d3 1\n")
    (tmp_path / "q.tsv").write_text("query-id\tcorpus-id\tscore\n1\td1\t2\n1\td2\t0\n2\td3\t1\n")
    assert load_qrels(tmp_path / "q.trec") == load_qrels(tmp_path / "q.tsv") == {"1": {"d1": 2, "d2": 0},
                                                                                   "2": {"d3": 1}}


@pytest.mark.parametrize("name, content, loader, line, problem", [
    ("run.txt", "q1 Q0 d1 1 0.5 t\nq1 Q0 d2 2 x t\n", load_trec_run, 2, "score 'x' is not a number"),
    ("run.txt", "q1 Q0 d1 1 0.5\n", load_trec_run, 1, "expected 6 columns"),
    ("run.txt", "q1 Q0 d1 1 0.5 t\nq1 Q0 d1 2 0.4 t\n", load_trec_run, 2, "appears twice"),
    ("qrels.txt", "1 0 d1 1\n1 0 d2 high\n", load_qrels, 2, "not an integer"),
    ("qrels.txt", "1 d1\n", load_qrels, 1, "expected 3 columns"),
    ("corpus.jsonl", '{"_id": "1", "text": "a"}\n{"_id": "2", "text": \n', load_beir_corpus, 2, "not valid JSON"),
    ("corpus.jsonl", '{"_id": "1", "text": "a"}\n{"_id": "1", "text": "b"}\n', load_beir_corpus, 2, "duplicate"),
    ("mrpc.txt", "1\t1\t2\tA\tB\n2\t3\t4\tC\tD\n", load_mrpc, 2, "label must be 0 or 1"),
])
def test_malformed_files_name_file_and_line(tmp_path, name, content, loader, line, problem):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataFormatError, match=problem) as info:
        loader(path)
    assert info.value.line_no == line and str(path) in str(info.value)
    assert str(info.value).startswith(f"{path}:{line}:")


def test_gzip_corpus_is_read(tmp_path):
    with gzip.open(tmp_path / "corpus.jsonl.gz", "wt") as f:
        f.write('{"_id": "7", "title": "T", "text": "body"}\n')
    assert load_beir_corpus(tmp_path / "corpus.jsonl") == {"7": {"title": "T", "text": "body"}}
