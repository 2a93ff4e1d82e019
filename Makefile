# The two commands a newcomer runs: `make demo` and `make test`. Both create .venv if needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test ui lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mta demo

# Two workers (pytest-xdist), each test module on one worker so its module-scoped fixtures are
# built once: most tests wait on subprocesses, servers and emulated latency, so two at a time
# take about 30 % less wall time on 2 cores (8.6 against 12.5 minutes).
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

ui: $(STAMP)
	$(BIN)/mta ui

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) data/dagster data/lake data/midi data/archive data/demo data/journal data/mta.duckdb* .env
