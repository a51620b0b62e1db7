# smsgw: `make demo` and `make test` set everything up on a fresh machine (Python 3.11+, make, cc).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
COUNT  ?= 100000

.PHONY: setup demo test test-all test-faults lint bench-smsc clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "smsgw needs Python 3.11 or newer (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

demo: setup
	$(BIN)/smsgw --config examples/smsgw.toml demo --count $(COUNT)

test: setup
	$(BIN)/python -m pytest -q -m "not slow"

test-faults: setup
	timeout 5400 $(BIN)/python -m pytest -q -m faults tests/faults

test-all: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy gateway providers routing smsgw loadtest

bench-smsc: setup
	$(BIN)/python -m loadtest.bench_smsc --spawn --count 200000 --window 500 --binds 2

clean:
	rm -rf $(VENV) .smsgw .pytest_cache .mypy_cache .ruff_cache
