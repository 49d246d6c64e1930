# Two commands a new user needs: `make run` and `make test`. Both bootstrap .venv themselves.
# `make run` installs the runtime dependencies only (`-e .`); the developer targets install `.[dev]`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
# make inspect / inspect-cli: the Inspector's options (inspect-cli: --method tools/list unless given) and its
# target (default: a fresh stdio server on a temporary database; TARGET=http://127.0.0.1:8765/mcp for an HTTP server)
ARGS ?=
TARGET ?=

.PHONY: run test soak lint typecheck bench conformance node-tools inspect inspect-cli clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUN_STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $(RUN_STAMP)

# The developer install holds the runtime one: after `make test`, `make run` installs nothing more.
$(DEV_STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(DEV_STAMP) $(RUN_STAMP)

run: $(RUN_STAMP)
	$(BIN)/mcp-scheduler --transport http

lint: $(DEV_STAMP)
	$(BIN)/ruff check .

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

# Four pytest workers whatever the cores, handing tests over as they go (worksteal): most tests wait on real
# processes and real time, so one worker per core left the two cores half idle, and with whole modules per worker
# (loadscope) one long module (the Inspector's, the failover's) kept a worker busy long after the others were done.
# On 2 shared cores, the slowest folders (reliability, runner, e2e, conformance): 254 s with 2 workers by module,
# 214 s with 4 by module, 124 s with 4 worksteal. Each test has 300 s (pytest-timeout; pyproject.toml says why).
test: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest --numprocesses 4 --dist worksteal

# The longer fault runs (minutes): fuzzing, concurrent HTTP clients, kill -9 x 20, failover x 20; figures in bench/results/reliability.json
# A test of 20 cycles takes minutes: an hour each instead of make test's 300 s (pyproject.toml says why a limit).
SOAK_TIMEOUT := --timeout 3600
soak: $(DEV_STAMP)
	$(BIN)/python -m pytest $(SOAK_TIMEOUT) -m soak tests/reliability
	MCP_SCHEDULER_KILL9_CYCLES=20 MCP_SCHEDULER_FAILOVER_CYCLES=20 $(BIN)/python -m pytest $(SOAK_TIMEOUT) \
		tests/reliability/test_kill9.py tests/reliability/test_failover.py
	MCP_SCHEDULER_LEASE_LOSSES=10 $(BIN)/python -m pytest $(SOAK_TIMEOUT) tests/reliability/test_lease_loss.py

conformance: $(DEV_STAMP)
	scripts/run-conformance.sh

node-tools:
	scripts/node-tools.sh

# The pinned MCP Inspector (node-tools/) on the project's Node 22: the web UI, or one CLI call.
inspect: $(RUN_STAMP)
	scripts/inspector.sh --web $(ARGS) $(if $(TARGET),-- $(TARGET))

inspect-cli: $(RUN_STAMP)
	scripts/inspector.sh --cli $(or $(ARGS),--method tools/list) $(if $(TARGET),-- $(TARGET))

bench: $(DEV_STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .node .pytest_cache
