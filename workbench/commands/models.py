"""`workbench models list`: the versioned embedding models, their dimension, fingerprint and install state."""
from __future__ import annotations

import json


def register(sub) -> None:
    parser = sub.add_parser("models", help="list the versioned embedding models")
    models_sub = parser.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    p = models_sub.add_parser("list", help="id, dimension, fingerprint and whether the package is installed")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=list_models)


def list_models(args) -> int:
    from index_engines.models import DEFAULT_MODEL_ID, MODEL_SPECS, fingerprint, is_installed

    rows = []
    for spec in MODEL_SPECS.values():
        installed = is_installed(spec)
        rows.append({
            "id": spec.id, "version": spec.version, "dim": spec.dim, "max_seq_length": spec.max_seq_length,
            "normalized": spec.normalize, "package": spec.package, "installed": installed,
            "fingerprint": fingerprint(spec) if installed else None, "default": spec.id == DEFAULT_MODEL_ID,
            "install": None if installed else spec.install_hint,
        })
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from workbench.tables import format_table

    print(format_table(
        ["id", "v", "dim", "max tokens", "installed", "fingerprint", "package"],
        [[r["id"] + (" (default)" if r["default"] else ""), r["version"], r["dim"], r["max_seq_length"],
          "yes" if r["installed"] else f"no: {r['install']}", (r["fingerprint"] or "-")[:16], r["package"]]
         for r in rows],
    ))
    return 0
