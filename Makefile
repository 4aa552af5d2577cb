# Two entry points: `make demo` and `make test`. Both build .venv first, from
# nothing but python3, so they work on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck protos bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

demo: $(STAMP)
	$(BIN)/python -m sdk

# The contract suite (docs/contract-suite.md) runs against both fakes the plugin starts.
test: $(STAMP) lint typecheck
	$(BIN)/python scripts/gen_protos.py --check
	$(BIN)/python -m pytest -n auto
	$(BIN)/python -m pytest --pyargs pytest_plugin.contract -q -p no:cacheprovider
	$(BIN)/python -m pytest --pyargs pytest_plugin.contract -q -p no:cacheprovider --fake-registry-target subprocess

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

protos: $(STAMP)
	$(BIN)/python scripts/gen_protos.py

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis build *.egg-info
