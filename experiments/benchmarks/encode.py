"""Encoder wrapper vs `SentenceTransformer.encode` called directly, on the same real sentences.

Interleaved runs (direct, wrapper without cache, wrapper writing a cold cache) so that machine noise hits all
three alike; the ratio is wrapper throughput / direct throughput, median over repeats. A warm-cache pass shows what
the second run of a job costs.
"""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

DESCRIPTION = "encoder wrapper vs calling SentenceTransformer.encode directly (throughput ratio)"


def add_arguments(parser) -> None:
    parser.add_argument("--model", default="minilm-l6-v2", help="model id (default minilm-l6-v2)")
    parser.add_argument("--n", type=int, default=2000, help="number of real sentences (default 2000)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)


def run(args) -> dict:
    import numpy as np

    from experiments.corpus_vectors import sentence_pool
    from index_engines.embedding import load_model

    if args.n <= 0 or args.repeats <= 0 or args.batch_size <= 0:
        raise ValueError("--n, --repeats and --batch-size must be positive")
    texts = list(sentence_pool()[:args.n])
    model = load_model(args.model)
    st = model.sentence_transformer
    st.encode(texts[:64], batch_size=args.batch_size, show_progress_bar=False)  # warm-up: first call allocates
    timings: dict[str, list[float]] = {"direct": [], "wrapper": [], "wrapper_cold_cache": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            t0 = time.perf_counter()
            direct = st.encode(texts, batch_size=args.batch_size, convert_to_numpy=True, show_progress_bar=False,
                               normalize_embeddings=True)
            timings["direct"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            ours = model.encode(texts, batch_size=args.batch_size, use_cache=False, show_progress=False)
            timings["wrapper"].append(time.perf_counter() - t0)
            cold = model.with_cache(Path(tmp) / f"cold-{r}.sqlite")
            t0 = time.perf_counter()
            cold.encode(texts, batch_size=args.batch_size, show_progress=False)
            timings["wrapper_cold_cache"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        cold.encode(texts, batch_size=args.batch_size, show_progress=False)
        warm = time.perf_counter() - t0
    max_diff = float(np.abs(direct - ours).max())
    med = {k: statistics.median(v) for k, v in timings.items()}
    return {
        "model": model.version, "n_texts": len(texts), "batch_size": args.batch_size, "repeats": args.repeats,
        "direct_texts_per_s": len(texts) / med["direct"],
        "wrapper_texts_per_s": len(texts) / med["wrapper"],
        "wrapper_cold_cache_texts_per_s": len(texts) / med["wrapper_cold_cache"],
        "warm_cache_texts_per_s": len(texts) / warm,
        "throughput_ratio": med["direct"] / med["wrapper"],
        "throughput_ratio_cold_cache": med["direct"] / med["wrapper_cold_cache"],
        "max_abs_diff_vs_direct": max_diff,
        "seconds": {k: [round(x, 3) for x in v] for k, v in timings.items()},
    }


def render(result: dict) -> str:
    from workbench.tables import format_table

    rows = [
        ["SentenceTransformer.encode (direct)", round(result["direct_texts_per_s"], 1), 1.0],
        ["EmbeddingModel.encode, no cache", round(result["wrapper_texts_per_s"], 1),
         round(result["throughput_ratio"], 3)],
        ["EmbeddingModel.encode, cold cache", round(result["wrapper_cold_cache_texts_per_s"], 1),
         round(result["throughput_ratio_cold_cache"], 3)],
        ["EmbeddingModel.encode, warm cache", round(result["warm_cache_texts_per_s"], 1),
         round(result["warm_cache_texts_per_s"] / result["direct_texts_per_s"], 1)],
    ]
    head = (f"{result['model']}: {result['n_texts']} real sentences, batch {result['batch_size']}, "
            f"median of {result['repeats']} interleaved runs; max |diff| vs direct {result['max_abs_diff_vs_direct']:.1e}")
    return head + "\n" + format_table(["encoder", "texts/s", "ratio vs direct"], rows)
