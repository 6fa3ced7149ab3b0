# ConnectX: `make run` installs everything and serves the embedded platform; `make test` runs
# every check. Both work on a fresh clone.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
STAMP := $(VENV)/.installed
ASSETS := src/connectx/web/static/vendor/.installed
NATIVE := src/connectx/intake/.cardscan-built
PG_URL ?= postgresql://postgres@127.0.0.1:5432/postgres
PYTEST_WORKERS ?= 2

export CONNECTX_HOST ?= 127.0.0.1
export CONNECTX_PORT ?= 8000
export CONNECTX_DATA_DIR ?= var

.PHONY: install run test lint typecheck test-sqlite test-postgres test-browser services clean

install: $(STAMP) $(ASSETS) $(NATIVE)

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv==0.13.9

$(STAMP): pyproject.toml requirements.lock | $(UV)
	$(UV) pip sync --quiet --python $(BIN)/python requirements.lock
	$(UV) pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $@

# the card-number pre-scan in C (src/connectx/intake/cardscan.py); skipped, with a note, on a
# machine without a C compiler
$(NATIVE): src/connectx/intake/cardscan.c | $(STAMP)
	scripts/build-native.sh $(BIN)/python
	touch $@

$(ASSETS): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	npm run --silent vendor
	touch $@

run: install
	scripts/run.sh

services:
	scripts/services.sh

lint: install
	$(BIN)/ruff check src tests bench migrations
	$(BIN)/ruff format --check src tests bench migrations

typecheck: install
	$(BIN)/mypy

test-sqlite: install
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) -m "not browser"

test-postgres: install services
	CONNECTX_TEST_DATABASE_URL=$(PG_URL) $(BIN)/pytest -q -n $(PYTEST_WORKERS) -m "not browser"

test-browser: install
	scripts/ensure-chromium.sh
	$(BIN)/pytest -q -m browser

# The SQLite and PostgreSQL passes run one after the other, each on PYTEST_WORKERS workers: side by
# side (four workers and the server on two cores, load ~6) timing-sensitive tests failed at random
# (a different one each run). Clean-clone CI on 829504e (session 9, docs/testing.md): green,
# 17.8 min in all (SQLite 6.9, PostgreSQL 8.3, browser 1.9; was 34.9); 8.5 min on session 10's
# faster machine. Every pass runs even when one before it failed; the target fails if any did.
test: lint typecheck
	@failed=0; \
	for pass in test-sqlite test-postgres test-browser; do \
		$(MAKE) --no-print-directory $$pass || failed=1; \
	done; \
	exit $$failed

clean:
	rm -rf $(VENV) node_modules src/connectx/web/static/vendor $(NATIVE) src/connectx/intake/_cardscan*.so
