# babelmill — every target sets itself up (virtualenv + pinned dependencies) first.
SHELL := /bin/bash
PY_SYS ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.setup-done
TORCH_PIN := torch==2.13.0
ENGINE ?= ray
BENCH_SCALE ?= 1
export BENCH_SCALE

.PHONY: help setup demo test test-fast bench bench-scale lint lock clean distclean pretrain gpu-check curate tokenizer audit

help:
	@echo "make demo   - run the pipeline on the built-in UDHR demo corpus (sets itself up)"
	@echo "make test   - run the test suite (sets itself up)"
	@echo "make bench  - run the benchmarks and print their figures"
	@echo "make bench-scale - dedup at 1M and 5M documents on a local 2-worker Ray (long)"
	@echo "make curate CONFIG=run.yaml [OUTPUT=dir] [ENGINE=ray|beam|local] - babelmill run (on the cluster in RAY_ADDRESS if set)"
	@echo "make tokenizer INPUT=curated_dir OUTPUT=dir [VOCAB=8000] [PARALLEL=dev_dir] - train the tokenizer"
	@echo "make pretrain CONFIG=.. DATA=.. SAVE=.. [NNODES= NPROC_PER_NODE= NODE_RANK= MASTER_ADDR=] - torchrun megatron-core training"
	@echo "make audit MODEL=dir BENCHMARK=file.jsonl JSON=out.json [HTML=out.html] - contamination audit"
	@echo "make gpu-check - pretraining on the GPUs found (bf16, TE, dist. optimizer, async save, resume, MFU); dry mode without a GPU"
	@echo "make lint   - ruff"
	@echo "make setup  - create $(VENV) with pinned dependencies (idempotent)"

setup: $(STAMP)

# torch is pinned and installed before anything else so that no dependency can pull a CUDA build.
$(STAMP): requirements.txt pyproject.toml setup.py
	@test -x $(PY) || $(PY_SYS) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH_PIN)
	$(PIP) install -q -r requirements.txt
	$(PIP) install -q --no-deps -e .
	@touch $@

demo: setup
	$(PY) -m demo.run --engine $(ENGINE)

test: setup
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

BENCH_STAMP := $(VENV)/.bench-setup-done

$(BENCH_STAMP): $(STAMP) requirements-bench.txt
	$(PIP) install -q -r requirements-bench.txt
	@touch $@

# lm-eval (the audit's speed anchor) in its own environment, torch pinned first as everywhere
LMEVAL_VENV := bench/_work/lmeval-venv
$(LMEVAL_VENV)/.done:
	$(PY_SYS) -m venv $(LMEVAL_VENV)
	$(LMEVAL_VENV)/bin/pip install -q $(TORCH_PIN)
	$(LMEVAL_VENV)/bin/pip install -q lm_eval==0.4.13 transformers==5.18.0 accelerate==1.15.0
	@touch $@

bench: setup $(BENCH_STAMP) $(LMEVAL_VENV)/.done
	$(PY) -m bench.run_all

bench-scale: setup
	$(PY) -m bench.dedup_scale --json bench/_work/dedup_scale.json

# The jobs as cluster users run them; each prints its usage when a variable is missing.
# `curate` runs where $$RAY_ADDRESS points (a local Ray without it); ENGINE only when given.
curate: setup
	@test "$(origin CONFIG)" != "file" || { echo "usage: make curate CONFIG=run.yaml [OUTPUT=dir] [ENGINE=ray|beam|local]"; exit 2; }
	$(PY) -m babelmill.cli run "$(CONFIG)" $(if $(OUTPUT),--output "$(OUTPUT)") $(if $(filter command line environment,$(origin ENGINE)),--engine "$(ENGINE)")

VOCAB ?= 8000
tokenizer: setup
	@test -n "$(INPUT)" -a -n "$(OUTPUT)" || { echo "usage: make tokenizer INPUT=curated_dir OUTPUT=dir [VOCAB=8000] [PARALLEL=dev_dir]"; exit 2; }
	$(PY) -m babelmill.cli tokenizer train --input "$(INPUT)" --output "$(OUTPUT)" --vocab-size "$(VOCAB)" $(if $(PARALLEL),--parallel "$(PARALLEL)")

audit: setup
	@test -n "$(MODEL)" -a -n "$(BENCHMARK)" -a -n "$(JSON)" || { echo "usage: make audit MODEL=dir BENCHMARK=file.jsonl JSON=out.json [HTML=out.html]"; exit 2; }
	$(PY) -m babelmill.cli audit --model "$(MODEL)" --benchmark "$(BENCHMARK)" --json "$(JSON)" $(if $(HTML),--html "$(HTML)")

# 125m and 1.3b presets on this machine's GPUs (under 8 min on one H100/H200); figures in
# bench/_work/gpu_check.json. Without a GPU: the dry mode (also run by `make test`).
gpu-check: setup
	$(PY) -m bench.gpu_check

# Multi-node pretraining: run on every node with its NODE_RANK (see README "Training on a GPU cluster").
NNODES ?= 1
NPROC_PER_NODE ?= 1
NODE_RANK ?= 0
MASTER_ADDR ?= 127.0.0.1
MASTER_PORT ?= 29500
CONFIG ?= configs/pretrain/tiny.yaml
pretrain: setup
	@test -n "$(DATA)" -a -n "$(SAVE)" || { echo "usage: make pretrain CONFIG=... DATA=tokenized_dir SAVE=checkpoint_dir [NNODES=.. NPROC_PER_NODE=.. NODE_RANK=.. MASTER_ADDR=..]"; exit 2; }
	NNODES=$(NNODES) NPROC_PER_NODE=$(NPROC_PER_NODE) NODE_RANK=$(NODE_RANK) MASTER_ADDR=$(MASTER_ADDR) MASTER_PORT=$(MASTER_PORT) \
	PYTHON=$(PY) pretrain/launch/torchrun.sh --config "$(CONFIG)" --data "$(DATA)" --save "$(SAVE)"

lint: setup
	$(VENV)/bin/ruff check .

# Re-pin the full dependency tree from requirements.in (run after changing it).
lock: setup
	$(PIP) install -q -r requirements.in
	( echo "# Full pinned dependency tree for .venv (generated from requirements.in by make lock)."; \
	  echo "# torch==2.13.0 (CPU) is installed before this file by make setup."; \
	  $(PIP) freeze --exclude-editable | grep -v -E "^(torch|babelmill)==" ) > requirements.txt

clean:
	rm -rf runs .pytest_cache .ruff_cache bench/_work

distclean: clean
	rm -rf $(VENV) .cache data/demo
