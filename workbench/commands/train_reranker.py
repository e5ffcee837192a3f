"""`workbench train-reranker [--name NAME] ...`: fine-tune a cross-encoder on SciFact train judgments and register
it as `<name>-v<N>` under the data directory; `workbench train-reranker --list` shows the registered ones."""
from __future__ import annotations

import json


def register(sub) -> None:
    from experiments.train_reranker import TrainConfig

    d = TrainConfig()
    p = sub.add_parser("train-reranker", help="fine-tune and register a cross-encoder reranker (CPU, minutes)",
                       description=__doc__)
    p.add_argument("--list", action="store_true", help="list registered rerankers and exit")
    p.add_argument("--name", default=d.name, help=f"registry name (default {d.name}); versions are added")
    p.add_argument("--base-model", default=d.base_model, help="embedding model whose transformer is the base")
    p.add_argument("--dense-model", default=d.dense_model, help="embedding model that mines dense negatives")
    p.add_argument("--max-queries", type=int, default=d.max_queries, help="use at most N train queries")
    p.add_argument("--dev-fraction", type=float, default=d.dev_fraction, help="train queries held out for dev")
    p.add_argument("--negatives", type=int, default=d.negatives,
                   help="hard negatives per (query, positive) group from each of BM25 and dense")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="groups per optimizer step")
    p.add_argument("--mine-depth", type=int, default=d.mine_depth, help="draw negatives from this top-k")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--max-length", type=int, default=d.max_length, help="tokens per (query, passage) pair")
    p.add_argument("--learning-rate", type=float, default=d.learning_rate, help="transformer learning rate")
    p.add_argument("--head-learning-rate", type=float, default=d.head_learning_rate, help="fresh head's rate")
    p.add_argument("--max-steps", type=int, default=d.max_steps, help="stop after N optimizer steps")
    p.add_argument("--dev-depth", type=int, default=d.dev_depth, help="rerank this many fused dev candidates")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--json", action="store_true", help="print the model card as JSON")
    p.set_defaults(handler=train)


def train(args) -> int:
    from index_engines.rerank import list_rerankers, rerankers_dir

    if args.list:
        rows = [{"reranker": r.ref, "path": str(r.path), "steps": r.card.get("training", {}).get("steps"),
                 "dev": r.card.get("dev")} for r in list_rerankers()]
        if args.json:
            print(json.dumps(rows, indent=2))
        elif not rows:
            print(f"no rerankers registered in {rerankers_dir()}; train one with `workbench train-reranker`")
        else:
            from workbench.tables import format_table

            print(format_table(["reranker", "steps", "dev nDCG@10 fused -> reranked", "path"],
                               [[r["reranker"], r["steps"] or 0, _dev(r["dev"]), r["path"]] for r in rows]))
        return 0
    from experiments.benchmarks.engines import passive_openmp

    passive_openmp()  # torch's OpenMP threads must sleep, not spin, on a shared 2-core machine: ~4x faster steps here
    from experiments.train_reranker import TrainConfig, train_reranker

    config = TrainConfig(
        name=args.name, base_model=args.base_model, dense_model=args.dense_model, max_queries=args.max_queries,
        dev_fraction=args.dev_fraction, negatives=args.negatives, mine_depth=args.mine_depth, epochs=args.epochs,
        batch_size=args.batch_size, max_length=args.max_length, learning_rate=args.learning_rate,
        head_learning_rate=args.head_learning_rate,
        max_steps=args.max_steps, dev_depth=args.dev_depth, seed=args.seed)
    result = train_reranker(config, progress=not args.json)
    if args.json:
        print(json.dumps(result.card, indent=2, default=str))
    else:
        t = result.card["training"]
        print(f"registered reranker {result.info.ref} at {result.info.path}\n"
              f"  {result.card['data']['groups']} groups (positive + hard negatives) from "
              f"{result.card['data']['train_queries']} train queries, "
              f"{t['steps']} steps in {t['seconds']} s, loss {t['loss_first_20']:.3f} -> {t['loss_last_20']:.3f}\n"
              f"  dev nDCG@10 (fused -> reranked): {_dev(result.card.get('dev'))}\n"
              f"  use it with rerank={result.info.name!r} (latest) or {result.info.ref!r}")
    return 0


def _dev(dev: dict | None) -> str:
    if not dev:
        return "-"
    return f"{dev['ndcg@10_fused']:.4f} -> {dev['ndcg@10_reranked']:.4f} ({dev['queries']} queries)"
