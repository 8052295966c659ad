# Two commands matter: `make run` and `make test`. Both create .venv on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test lint lint-deploy typecheck clean bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/collections-hub up

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

# Dockerfile, compose and Kubernetes manifests: kubernetes-validate, checkov, hadolint (own venv).
lint-deploy:
	bash deploy/check.sh

# tests/browser/ drives Debian's chromium through Playwright; nothing downloads a browser of its own.
test: lint typecheck lint-deploy
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)
	$(BIN)/pytest

# Speed, cost and scale beside their references (bench/README.md); wrk and nginx come from Debian.
bench: $(VENV)/.installed-dev
	@command -v wrk >/dev/null && { command -v nginx >/dev/null || test -x /usr/sbin/nginx; } \
		|| { apt-get update && apt-get install -y wrk nginx; }
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .venv-deploy .hub-data .pytest_cache .mypy_cache .ruff_cache
