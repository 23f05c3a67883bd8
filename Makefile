# One entry point for people and CI. Every install step lives here, so a fresh clone needs only
# Python 3.11+, Node.js 20+ and npm.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMPS := .stamps

.PHONY: test lint typecheck pytest demo serve bench deps clean format

test: lint typecheck pytest

$(STAMPS):
	mkdir -p $(STAMPS)

$(STAMPS)/venv: requirements.txt requirements-dev.txt | $(STAMPS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(STAMPS)/npm: package.json package-lock.json | $(STAMPS)
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

deps: $(STAMPS)/venv $(STAMPS)/npm

lint: $(STAMPS)/venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMPS)/venv
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

typecheck: $(STAMPS)/venv
	$(PY) -m mypy

pytest: $(STAMPS)/venv $(STAMPS)/npm
	$(PY) -m pytest $(PYTEST_ARGS)

demo: $(STAMPS)/venv $(STAMPS)/npm
	$(PY) -m demo

serve: $(STAMPS)/venv $(STAMPS)/npm
	$(PY) -m demo serve

clean:
	rm -rf $(VENV) node_modules $(STAMPS) .pytest_cache .mypy_cache .ruff_cache

bench: $(STAMPS)/venv $(STAMPS)/npm
	$(PY) -m bench.active_runs
