VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo dev test lint typecheck unit deploy-check integration services bench bench-pipes bench-control bench-fairness bench-cli bench-dashboard bench-redrive bench-steering bench-api clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/jobservice demo

dev: $(STAMP)
	$(BIN)/jobservice dev

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest tests/unit -q

deploy-check: $(STAMP)
	$(BIN)/pytest tests/deploy -q

services:
	scripts/ensure-services

integration: $(STAMP) services
	$(BIN)/pytest tests/integration -q

test: lint typecheck services
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python -m bench.engine

bench-pipes: $(STAMP) services
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench.pipes

bench-control: $(STAMP) services
	$(BIN)/python -m bench.control

bench-cli: $(STAMP)
	$(BIN)/python -m bench.cli

bench-dashboard: $(STAMP)
	$(BIN)/python -m bench.dashboard

bench-fairness: $(STAMP)
	$(BIN)/python -m bench.fairness

bench-redrive: $(STAMP)
	$(BIN)/python -m bench.redrive

bench-api: $(STAMP)
	$(BIN)/python -m bench.api

bench-steering: $(STAMP) services
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench.steering

clean:
	rm -rf $(VENV) .jobservice .mypy_cache .pytest_cache .ruff_cache
