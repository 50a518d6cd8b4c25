# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
VENV := .venv
UV_VERSION := 0.13.9
export MLFLOW_SKIP_PIP_REQUIREMENTS_CHECK := true

# Ports of the three UIs, e.g. `make ui DAGSTER_PORT=3100 MLFLOW_PORT=5100 SERVE_PORT=3101`.
DAGSTER_PORT ?= 3000
MLFLOW_PORT ?= 5000
SERVE_PORT ?= 3001

.PHONY: install demo test test-topology up serve mlflow-ui ui lint

# The venv is rebuilt from the lock whenever pyproject.toml or uv.lock change.
$(VENV)/.installed: pyproject.toml uv.lock
	test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(VENV)/bin/uv sync --frozen --python $(VENV)/bin/python
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/optimum demo --scale demo --serve-port $(SERVE_PORT)

# CI gates: lint, format and security lint (ruff, S rules) first; then the suite with coverage of
# orchestration/, ml/ and serving/ (subprocesses included), failing under 80% (pyproject.toml). Two pytest-xdist
# workers, one test file each at a time (module fixtures materialize once), the slowest files first
# (tests/conftest.py SLOW_FILES; --no-loadscope-reorder keeps that order).
test: install lint
	$(VENV)/bin/pytest -n 2 --dist loadfile --no-loadscope-reorder --cov --cov-report=term --durations=25

# The docker-compose services as processes on 127.0.0.1, refresh_everything through the daemon: part of
# `make test`; this runs it alone and prints each phase's time.
test-topology: install
	$(VENV)/bin/pytest -s -m topology tests/integration/test_topology.py --durations=5

up: install
	$(VENV)/bin/optimum up --port $(DAGSTER_PORT)

serve: install
	$(VENV)/bin/optimum serve --port $(SERVE_PORT)

mlflow-ui: install
	$(VENV)/bin/optimum mlflow-ui --port $(MLFLOW_PORT)

# All three at once; Ctrl-C stops them all.
ui: install
	$(VENV)/bin/optimum ui --dagster-port $(DAGSTER_PORT) --mlflow-port $(MLFLOW_PORT) --serve-port $(SERVE_PORT)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
