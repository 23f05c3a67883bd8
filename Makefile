# One entry point for people and CI. Every install step lives here, so a fresh clone needs only
# Python 3.11+, Python 3.13 (for the Functions worker's own indexing, tests/host), Node.js 20+, npm and
# bash (the conformance suite runs the guide's shell blocks).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMPS := .stamps

# The Functions host's Python worker (azure-functions-runtime) needs Python 3.13+. Default: the first
# working `python3.13` on PATH (a pyenv shim is there even when 3.13 is not the active version, and then
# fails), else pyenv's 3.13 build. Found once, and only by the targets that need it.
HOST_VENV := .venv-host
HOST_PY   := $(HOST_VENV)/bin/python
find_python313 = $(shell for p in python3.13 "$$(pyenv root 2>/dev/null || echo "$${PYENV_ROOT:-$$HOME/.pyenv}")"/versions/3.13*/bin/python3.13; do \
	"$$p" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' >/dev/null 2>&1 && { command -v "$$p"; break; }; done)
PYTHON313 ?= $(eval PYTHON313 := $(find_python313))$(PYTHON313)

.PHONY: test lint typecheck pytest checkov demo serve bench deps clean format require-python313 package chromium

# Python 3.13 is checked first, so a machine without it stops here with how to get it, not midway.
test: require-python313 lint typecheck pytest checkov

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

# The worker environment the host runs: Python 3.13 with requirements-host.txt (tests/host indexes the app in it).
require-python313:
	@test -n "$(PYTHON313)" || { echo "error: Python 3.13 not found. make test needs it for .venv-host, the" \
		"Functions worker's own environment (tests/host). Install it (pyenv install 3.13, or your system's" \
		"python3.13 package) or run make PYTHON313=/path/to/python3.13" >&2; exit 1; }
	@$(PYTHON313) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' || { \
		echo "error: PYTHON313=$(PYTHON313) is not a working Python 3.13" >&2; exit 1; }

$(STAMPS)/venv-host: requirements-host.txt requirements.txt | $(STAMPS) require-python313
	test -x $(HOST_PY) || $(PYTHON313) -m venv $(HOST_VENV)
	$(HOST_PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(HOST_PY) -m pip install --quiet --disable-pip-version-check -r requirements-host.txt
	touch $@

# The policy scanner (checkov) in its own environment: its many dependencies must not change .venv.
CHECKOV_VENV := .venv-checkov
$(STAMPS)/venv-checkov: requirements-checkov.txt | $(STAMPS)
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $@

# The real Azure CLI for the conformance suite (tests/conformance) in its own environment .venv-azcli: it
# brings well over a hundred packages that must not change .venv. Installs in a few minutes.
AZCLI_VENV := .venv-azcli
$(STAMPS)/venv-azcli: requirements-azcli.txt | $(STAMPS)
	test -x $(AZCLI_VENV)/bin/python || $(PYTHON) -m venv $(AZCLI_VENV)
	$(AZCLI_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(AZCLI_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-azcli.txt
	touch $@

checkov: $(STAMPS)/venv-checkov
	LOG_LEVEL=ERROR $(CHECKOV_VENV)/bin/checkov -d infra --framework arm --config-file .checkov.yaml

deps: $(STAMPS)/venv $(STAMPS)/venv-host $(STAMPS)/npm $(STAMPS)/venv-azcli

# Beside ruff and the layering: the code's shape (module and function sizes, radon's cyclomatic
# complexity: tools/code_shape.py), and no use case reaching through a shared context.
lint: $(STAMPS)/venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports
	$(PY) tools/code_shape.py
	@! grep -rn "self\.context" transfer/service || { echo "error: a use case reaches through self.context" >&2; exit 1; }

format: $(STAMPS)/venv
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

typecheck: $(STAMPS)/venv
	$(PY) -m mypy

# The dashboard's browser tests drive headless Chromium (Debian's chromium package), installed when missing
# (as root in CI; elsewhere through sudo when there is one).
SUDO := $(shell test "$$(id -u)" -eq 0 || command -v sudo)
chromium:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }

# tests/test_infra.py scans each hosting plan's evaluated resources with checkov too.
pytest: $(STAMPS)/venv $(STAMPS)/venv-host $(STAMPS)/venv-checkov $(STAMPS)/npm $(STAMPS)/venv-azcli chromium
	$(PY) -m pytest $(PYTEST_ARGS)

demo: $(STAMPS)/venv $(STAMPS)/npm
	$(PY) -m demo

serve: $(STAMPS)/venv $(STAMPS)/npm
	$(PY) -m demo serve $(SERVE_ARGS)

# The function app's deployment package, dist/functionapp.zip (.funcignore applies; docs/deploy.md). Standard
# library only, so it needs no venv. PACKAGE_ARGS=--with-dependencies for Elastic Premium and Dedicated plans.
package:
	$(PYTHON) infra/package.py $(PACKAGE_ARGS)

clean:
	rm -rf $(VENV) $(HOST_VENV) $(CHECKOV_VENV) $(AZCLI_VENV) node_modules $(STAMPS) .pytest_cache .mypy_cache \
		.ruff_cache .import_linter_cache dist .serve .demo

bench: $(STAMPS)/venv $(STAMPS)/npm
	$(PY) -m bench.active_runs
	@# each prints its figures as ratios against a baseline of the same run, and exits 1 when a budget is missed:
	@# the leading - lets the others run all the same (docs/performance.md)
	-$(PY) -m bench.cold_start
	-$(PY) -m bench.arm_calls
	-$(PY) -m bench.sweep
	-$(PY) -m bench.reconcile_history
	-$(PY) -m bench.trigger_listing
	-$(PY) -m bench.memory
	-$(PY) -m bench.http_export
	-$(PY) -m bench.throughput
	-$(PY) -m bench.incremental
	-$(PY) -m bench.push_latency --window 5
	-$(PY) -m bench.dashboard
