# The two commands of the README: `make run` and `make test`. Both install what they need into .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export GRADIO_ANALYTICS_ENABLED := False
export HF_HUB_DISABLE_TELEMETRY := 1
export GRADIO_RUN_HISTORY := False

.PHONY: run test bench lint typecheck unit install install-dev system-deps clean

# Debian packages the tests use, installed when missing and root: docker-compose validates docker-compose.yml,
# postgresql runs the storage suite a second time, chromium drives the browser tests.
SYSTEM_PACKAGES := docker-compose postgresql chromium chromium-driver

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
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
# server on 127.0.0.1 (tests/postgres.py; as the postgres user under root) and stops it at the end. Give
# CORRAL_TEST_POSTGRES_URL=postgresql+psycopg://USER@HOST/DB to use a server of your own instead. Without
# PostgreSQL those cases are skipped, except under CI=true where they fail.
unit: install-dev system-deps
	$(PY) -m pytest $(PYTEST_ARGS)

test: lint typecheck unit

# The benchmarks at their quick sizes (a few minutes); BENCH_ARGS= (empty) runs every one at full size.
# JSON figures and a markdown summary (SUMMARY.md) land in benchmarks/results/.
BENCH_ARGS ?= --quick
bench: install-dev
	$(PY) -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
