# smsgw: `make demo` and `make test` set everything up on a fresh machine (Python 3.11+, make, cc).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
COUNT  ?= 100000

.PHONY: setup browser demo test test-all test-faults lint bench bench-smsc clean

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

test: setup browser
	$(BIN)/python -m pytest -q -m "not slow"

# The browser tests (tests/browser) drive Debian's chromium, never a downloaded one: it is
# installed here when missing and make runs as root; otherwise those tests skip, saying why.
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get install -y -q chromium chromium-driver || \
	      { apt-get update -q && apt-get install -y -q chromium chromium-driver; } || \
	      echo "chromium could not be installed: the browser tests will skip"; \
	  else echo "chromium is missing and make is not root: the browser tests will skip"; fi; }

test-faults: setup
	timeout 5400 $(BIN)/python -m pytest -q -m faults tests/faults

test-all: setup browser
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy gateway providers routing smsgw loadtest admin

# make bench SCENARIO=batch [BENCH_ARGS="--count 100000 --procs 2 --json /tmp/batch.json"]
bench: setup
	$(BIN)/smsgw-bench $(or $(SCENARIO),single) $(BENCH_ARGS)

bench-smsc: setup
	$(BIN)/python -m loadtest.bench_smsc --spawn --count 200000 --window 500 --binds 2

clean:
	rm -rf $(VENV) .smsgw .pytest_cache .mypy_cache .ruff_cache
