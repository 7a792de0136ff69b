# Two entry points for a fresh machine with Python >= 3.11: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
CORES ?= all
BIN := $(VENV)/bin

.PHONY: run test lint clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/activate requirements.txt pyproject.toml
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -r requirements.txt
	$(BIN)/python -m pip install --no-deps -e .
	touch $@

## run: set up the environment and run the default pipeline (the demo unless config.yaml says otherwise)
run: $(VENV)/.installed
	$(BIN)/snakemake --cores $(CORES)

## test: set up the environment and run the test suite
test: $(VENV)/.installed
	$(BIN)/python -m pytest

lint: $(VENV)/.installed
	$(BIN)/snakemake --lint

clean:
	rm -rf results .snakemake
