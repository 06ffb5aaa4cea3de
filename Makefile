# The only two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)
CONFIG_DIR ?= run/configuration

.PHONY: run test lint typecheck unit docs system-deps bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "ferryd needs Python 3.11 or newer ($(PYTHON) is older)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@rm -f $(VENV)/.installed-* && touch $@

system-deps:
	@bash scripts/install-system-deps.sh

run: $(STAMP)
	$(BIN)/ferryd serve --config-dir $(CONFIG_DIR)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

docs: $(STAMP)
	$(BIN)/ferryd events --markdown > docs/events.md
	$(BIN)/ferryd options --markdown > docs/configuration.md

test: $(STAMP) system-deps lint typecheck
	$(BIN)/pytest

# Not part of `test`: minutes of 1 GiB transfers. Extra options: make bench BENCH_ARGS=--quick
bench: $(STAMP) system-deps
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) run .pytest_cache .mypy_cache .ruff_cache
