# Two commands a new user needs: `make run` and `make test`. Both bootstrap .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test soak lint typecheck bench conformance node-tools clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/mcp-scheduler --transport http

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

# The longer fault runs (minutes): fuzzing, concurrent HTTP clients, kill -9 x 20, failover x 20; figures in bench/results/reliability.json
soak: $(STAMP)
	$(BIN)/python -m pytest -m soak tests/reliability
	MCP_SCHEDULER_KILL9_CYCLES=20 MCP_SCHEDULER_FAILOVER_CYCLES=20 $(BIN)/python -m pytest \
		tests/reliability/test_kill9.py tests/reliability/test_failover.py

conformance: $(STAMP)
	scripts/run-conformance.sh

node-tools:
	scripts/node-tools.sh

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .node .pytest_cache
