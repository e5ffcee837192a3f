"""`workbench ingest --collection NAME --beir DIR [--model ID] [--engine ENGINE] [--shards N]`.

Builds (or extends) a collection from a BEIR folder's `corpus.jsonl[.gz]` through the collection's write path:
batches of documents (title + text) are encoded with the pinned model, logged, acknowledged, sealed and indexed
in the background; the command waits until every segment is indexed and prints a summary.
"""
from __future__ import annotations

import json
import time


def register(sub) -> None:
    p = sub.add_parser("ingest", help="build a collection from a BEIR folder (write path: WAL, segments, index)")
    p.add_argument("--collection", required=True, help="collection name (created under the data directory)")
    p.add_argument("--beir", required=True, help="BEIR folder with corpus.jsonl[.gz]")
    p.add_argument("--model", default=None, help="embedding model id (default minilm-l6-v2; an existing "
                                                  "collection keeps its pinned model)")
    p.add_argument("--engine", default="hnsw", help="ANN engine of sealed segments (default hnsw)")
    p.add_argument("--engine-param", action="append", default=[], metavar="NAME=VALUE",
                   help="engine build parameter, e.g. M=32 (repeatable; values parsed as JSON when possible)")
    p.add_argument("--shards", type=int, default=1, help="hash shards (default 1)")
    p.add_argument("--batch-size", type=int, default=256, help="documents per upsert (default 256)")
    p.add_argument("--seal-items", type=int, default=20_000, help="items per growing segment before it seals")
    p.add_argument("--fsync", default="always", help="log fsync policy: always | interval | never")
    p.add_argument("--tenant", default=None, help="tenant of every document (default: the collection's default)")
    p.add_argument("--recreate", action="store_true", help="delete an existing collection of that name first")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(handler=ingest)


def parse_params(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ValueError(f"--engine-param takes NAME=VALUE, got {pair!r}")
        try:
            out[name] = json.loads(value)
        except ValueError:
            out[name] = value
    return out


def ingest(args) -> int:
    import shutil

    from golden_sets.loaders import load_beir_corpus
    from index_engines.collection import Collection
    from index_engines.collection.catalog import collection_path
    from workbench.tables import format_table

    if args.batch_size <= 0:
        raise ValueError("--batch-size must be positive")
    path = collection_path(args.collection)
    corpus = load_beir_corpus(__import__("pathlib").Path(args.beir) / "corpus.jsonl")
    if args.recreate and path.exists():
        shutil.rmtree(path)
    started = time.perf_counter()
    if (path / "manifest.json").exists():
        col = Collection.open(path, fsync=args.fsync)
        if args.model and args.model != col.config.model_id:
            col.close()
            raise ValueError(f"collection {args.collection!r} is pinned to {col.config.model_id!r}, not "
                             f"{args.model!r}; use --recreate or another collection name (a migration)")
    else:
        col = Collection.create(path, model=args.model or "minilm-l6-v2", engine=args.engine,
                                engine_params=parse_params(args.engine_param), shards=args.shards,
                                seal_items=args.seal_items, fsync=args.fsync)
    with col:
        ids = list(corpus)
        for start in range(0, len(ids), args.batch_size):
            batch = ids[start:start + args.batch_size]
            col.upsert([{"id": doc_id, "text": _doc_text(corpus[doc_id]), "tenant": args.tenant,
                         "metadata": {"has_title": bool(corpus[doc_id]["title"])}} for doc_id in batch])
        acknowledged = time.perf_counter()
        col.flush()  # seal, persist and index everything before reporting
        done = time.perf_counter()
        stats = col.stats()
    summary = {"collection": args.collection, "path": str(path), "model_version": stats["model_version"],
               "engine": stats["engine"], "shards": len(stats["shards"]), "documents": len(ids),
               "count": stats["count"], "segments": sum(len(s["segments"]) for s in stats["shards"]),
               "seconds_acknowledged": acknowledged - started, "seconds_indexed": done - started,
               "items_per_second": len(ids) / (done - started)}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(format_table(["field", "value"], [[k, v] for k, v in summary.items()]))
    return 0


def _doc_text(doc: dict) -> str:
    return f"{doc['title']}. {doc['text']}" if doc.get("title") else doc["text"]
