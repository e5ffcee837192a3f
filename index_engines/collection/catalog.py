"""Collections by name: `<settings.collections_dir>/<name>/`."""
from __future__ import annotations

import re
from pathlib import Path

from ..settings import get_settings
from .errors import CollectionError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def collection_path(name: str) -> Path:
    """The directory of collection `name` (letters, digits, `_`, `.`, `-`; at most 64 characters)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise CollectionError(f"collection name {name!r} is not valid: use 1-64 letters, digits, '_', '.' or '-', "
                              f"starting with a letter or digit")
    return get_settings().collections_dir / name


def list_collections() -> list[str]:
    root = get_settings().collections_dir
    return sorted(p.name for p in root.iterdir() if (p / "manifest.json").is_file()) if root.exists() else []
