# recon: `make run` serves the workspace and the API with a demo; `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
TEST_WORKERS ?= 2
export RECON_DATABASE_URL ?= sqlite:///$(CURDIR)/var/recon.db
export RECON_DATA_DIR ?= $(CURDIR)/var/data

.PHONY: help install run test fuzz lint format typecheck bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(BIN)/.installed: setup.cfg setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel
	$(BIN)/pip install -q -e '.[test,dev]'
	touch $@

install: $(BIN)/.installed ## create .venv and install recon with its test and dev extras

run: install ## migrate a SQLite DB under ./var, create the admin, load the demo, serve the workspace on :$(PORT)
	@mkdir -p var
	$(BIN)/flask --app wsgi db upgrade
	@$(BIN)/flask --app wsgi bootstrap --password-file var/admin-password
	@$(BIN)/flask --app wsgi demo
	@echo "workspace: http://127.0.0.1:$(PORT)/ (sign in as admin; the demo project is \"Bank vs ledger (demo)\"), API docs: http://127.0.0.1:$(PORT)/api/docs"
	PORT=$(PORT) $(BIN)/gunicorn -c ops/gunicorn.conf.py wsgi:app

test: install ## run the whole test suite with the coverage gate, on $(TEST_WORKERS) processes
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup --cov --cov-report=term-missing:skip-covered -q

fuzz: install ## schemathesis over every API operation with many examples (RECON_FUZZ_EXAMPLES, default 200)
	RECON_FUZZ_EXAMPLES=$${RECON_FUZZ_EXAMPLES:-200} $(BIN)/pytest tests/test_openapi.py -q -p no:cacheprovider

lint: install ## ruff check, ruff format --check, mypy on the typed layers
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy recon instrumentation

format: install ## ruff format and fix imports
	$(BIN)/ruff check --fix --select I .
	$(BIN)/ruff format .

bench: install ## run the benchmarks (ingest, engine, http overhead); prints ratios
	$(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python bench/ingest/run.py
	$(BIN)/python bench/engine/run.py --rows 100000
	$(BIN)/python bench/http_overhead/run.py

clean: ## remove the virtualenv and local data
	rm -rf $(VENV) var .pytest_cache .coverage htmlcov
