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

# The contract suite (docs/contract-suite.md) runs against both fakes the plugin starts,
# and against the fake's image when FAKE_REGISTRY_IMAGE names one (CI: .ci/run builds it;
# docs/containers.md). Container tests skip without Docker unless FAKE_REGISTRY_REQUIRE_DOCKER=1.
CONTRACT := $(BIN)/python -m pytest --pyargs pytest_plugin.contract -q -p no:cacheprovider
test: $(STAMP) lint typecheck
	$(BIN)/python scripts/gen_protos.py --check
	$(BIN)/python -m pytest -n auto
	$(CONTRACT)
	$(CONTRACT) --fake-registry-target subprocess
	$(if $(FAKE_REGISTRY_IMAGE),$(CONTRACT) --fake-registry-target docker)

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
