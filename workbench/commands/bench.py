"""`workbench bench NAME [--json]`: the benchmarks in `experiments/benchmarks/`, discovered by module name.

A benchmark module defines `DESCRIPTION`, `add_arguments(parser)`, `run(args) -> dict` (plain JSON-able figures,
all measured in one run) and `render(result) -> str` (the human-readable table).
"""
from __future__ import annotations

import importlib
import json
import pkgutil


def _benchmark_modules() -> dict[str, object]:
    from experiments import benchmarks

    return {
        info.name: importlib.import_module(f"{benchmarks.__name__}.{info.name}")
        for info in pkgutil.iter_modules(benchmarks.__path__)
        if not info.name.startswith("_")
    }


def register(sub) -> None:
    parser = sub.add_parser("bench", help="run a benchmark (ratios measured side by side in one run)")
    bench_sub = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    for name, module in sorted(_benchmark_modules().items()):
        text = module.DESCRIPTION.replace("%", "%%")  # argparse treats % as a format directive
        p = bench_sub.add_parser(name, help=text, description=text)
        p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
        module.add_arguments(p)
        p.set_defaults(handler=_make_handler(module))


def _make_handler(module):
    def handler(args) -> int:
        result = module.run(args)
        print(json.dumps(result, indent=2) if args.json else module.render(result))
        return 0

    return handler
