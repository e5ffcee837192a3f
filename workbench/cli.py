"""The `workbench` command line.

Each module in `workbench/commands/` defines `register(subparsers)`; the parser is assembled by discovering them,
so a new command is a new file. Command modules import heavy libraries (torch, faiss) inside their handlers, which
keeps `workbench --help` fast.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys

# OpenMP threads (faiss, torch) spin while they wait by default; on a shared 2-core machine that steals the core
# the other thread needs (measured here: faiss IVF builds 7x and reranker training steps 4x slower). Must be set
# before faiss or torch is imported, hence at the top of the entry point.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from . import commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workbench",
        description="Embedding Workbench: measure ANN recall against exact search, evaluate consumers' golden "
                    "sets, and migrate embedding models safely.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return int(args.handler(args) or 0)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        # Bad input is the user's to fix: say what is wrong, no traceback.
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"workbench {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
