# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
VENV := .venv
UV_VERSION := 0.13.9
export MLFLOW_SKIP_PIP_REQUIREMENTS_CHECK := true

.PHONY: install demo test up serve mlflow-ui lint

# The venv is rebuilt from the lock whenever pyproject.toml or uv.lock change.
$(VENV)/.installed: pyproject.toml uv.lock
	test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(VENV)/bin/uv sync --frozen --python $(VENV)/bin/python
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/optimum demo --out data --scale demo

# CI gates: lint, format and security lint (ruff, S rules) first; then the suite with coverage of
# orchestration/, ml/ and serving/ (subprocesses included), failing under 80% (pyproject.toml).
test: install lint
	$(VENV)/bin/pytest --cov --cov-report=term

up: install
	$(VENV)/bin/optimum up

serve: install
	$(VENV)/bin/optimum serve

mlflow-ui: install
	$(VENV)/bin/optimum mlflow-ui

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
