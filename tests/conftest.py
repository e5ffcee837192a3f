"""Shared test set-up.

Models load offline only. Everything a test run writes goes to a temporary `WORKBENCH_HOME`, while the
content-addressed cache (embeddings keyed by model fingerprint and text hash, reassembled weights) is the project's
own, so vectors are computed once across runs.
"""
from __future__ import annotations

import os
import tempfile

from index_engines.settings import PROJECT_ROOT

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WORKBENCH_CACHE", str(PROJECT_ROOT / ".workbench" / "cache"))
os.environ["WORKBENCH_HOME"] = tempfile.mkdtemp(prefix="workbench-test-home-")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def static_model():
    from index_engines.embedding import load_model

    return load_model("static-64")


@pytest.fixture(scope="session")
def minilm_model():
    from index_engines.embedding import load_model

    return load_model("minilm-l6-v2")
