# SafeServe: `make run` serves the guarded model on http://127.0.0.1:8000; `make test` runs the test suite.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.safeserve-installed

.PHONY: help install system-deps models serving-models litellm-venv run monitor test test-unit lint bench bench-gateway bench-classifiers eval config-check clean

help:
	@echo "make run     install what is missing, start Redis and serve SafeServe on http://127.0.0.1:8000"
	@echo "make monitor Prometheus with SafeServe's alerts on http://127.0.0.1:9090, for the gateway of make run"
	@echo "make test    run the whole test suite (unit, Serve-level, end-to-end against real Redis)"
	@echo "make lint    ruff: lint and format check"
	@echo "make eval    measure detection on the evaluation sets (docs/evaluation.md), in process"
	@echo "make bench   send requests through a running gateway and print per-stage latency"
	@echo "make bench-gateway  the gateway beside its upstream alone and a minimal pass-through, under load"
	@echo "make bench-classifiers  speed of the safety models, in process and through their deployments"
	@echo "make clean   remove the virtualenv and local state (.venv, .safeserve)"

# torch==2.13.0 first: it is the CPU wheel on this machine's disk; any other spec pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $@

install: $(STAMP)

system-deps:
	@scripts/system_deps.sh

models: install
	$(VENV)/bin/safeserve models build

# What `make run` serves with: the evaluation sets and the small Detoxify-format test model are left to
# `make test` and `make eval`, so the first start stays short.
SERVING_MODELS := --only generator --only intent --only toxicity
serving-models: install
	$(VENV)/bin/safeserve models build $(SERVING_MODELS)

config-check: install
	$(VENV)/bin/safeserve config check configs/local.yaml configs/production.yaml

run: install system-deps serving-models config-check
	@scripts/run.sh

monitor:
	@scripts/monitor.sh

# The LiteLLM proxy of tests/e2e/test_litellm.py, in a venv of its own (its pins differ from ours; about 35 s).
litellm-venv:
	@scripts/litellm_venv.sh

test: install models litellm-venv
	@scripts/system_deps.sh --test
	@scripts/test.sh

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test-unit: install
	$(PY) -m pytest tests/classifiers -q

bench: install
	$(PY) -m bench.latency

# The gateway beside the upstream alone and a minimal pass-through (docs/architecture.md, Measurements).
bench-gateway: install serving-models
	@scripts/system_deps.sh --bench
	source scripts/env.sh && $(PY) -m bench.gateway

bench-classifiers: install models
	source scripts/env.sh && $(PY) -m bench.classifiers

EVAL_SETS := input input_benign_sensitive output
# The Moderator's band and thresholds as the dev set would choose them (beside the config's), then every test
# set, the output targets, and the toxicity and intent models' leave-one-source-out tables.
eval: install models
	@mkdir -p bench/results
	source scripts/env.sh && $(PY) -m bench.moderator_policy
	@for set in $(EVAL_SETS); do \
		$(VENV)/bin/safeserve eval .safeserve/models/eval/$$set.jsonl --quiet \
			--json bench/results/eval_$$set.json --plot docs/img/eval_$$set.png || exit 1; echo; \
	done
	$(PY) -m bench.output_targets
	source scripts/env.sh && $(PY) -m bench.toxicity_loso
	source scripts/env.sh && $(PY) -m bench.intent_loso

clean:
	rm -rf $(VENV) .safeserve
