# Every target builds .venv and installs what it needs by itself:
# on a fresh machine with Python and pip, `make test` is the only command needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The suite mostly waits (pools, servers, polls): three workers on two cores finish it in about
# half the time of one. Each worker starts its own servers; TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 3
PYTEST_PARALLEL := $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist worksteal)

.PHONY: venv test test-fast lint docs screenshots demo bench bench-engine bench-pools bench-pools-smoke clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,docs,dev]"
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_PARALLEL)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_PARALLEL) -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check alsek tests bench examples
	$(BIN)/ruff format --check alsek
	$(BIN)/mypy

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# The dashboard's screenshots in docs/dashboard.md, taken by its browser tests.
screenshots: $(STAMP)
	ALSEK_SCREENSHOTS=docs/img $(BIN)/python -m pytest -q -p no:cacheprovider tests/web/test_web_browser.py

demo: $(STAMP)
	$(BIN)/python -m examples.demo

bench-engine: $(STAMP)
	$(BIN)/python bench/engine.py

# bench-pools creates bench/.venv-peers (Dramatiq, taskiq, Celery, matplotlib) and installs
# BullMQ into bench/peers/bullmq/node_modules (npm ci; needs Node 20+) on its first run.
bench-pools: $(STAMP)
	$(BIN)/python bench/pools.py

# Every row once, on 500 messages: shows that each works (figures too small to quote).
bench-pools-smoke: $(STAMP)
	$(BIN)/python bench/pools.py --quick --messages 500

bench: $(STAMP)
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/pools.py

clean:
	rm -rf $(VENV) site .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
