# Two entry points for a fresh machine with Python >= 3.11: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
CORES ?= all
BIN := $(VENV)/bin

.PHONY: run test vizgen benchmark realbench lint clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

# The core pins and the `spatialdata` extra's (SpatialData in and out; the tests use it) in one
# resolution, so that neither can silently move the other's versions.
$(VENV)/.installed: $(BIN)/activate requirements.txt requirements-spatialdata.txt pyproject.toml
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -r requirements.txt -r requirements-spatialdata.txt
	$(BIN)/python -m pip install --no-deps -e .
	touch $@

## run: set up the environment and run the default pipeline (the demo unless config.yaml says otherwise)
run: $(VENV)/.installed
	$(BIN)/snakemake --cores $(CORES)

## vizgen: the real MERFISH example (reads ../shared/data/vizgen_mouse_brain; see README.md)
vizgen: $(VENV)/.installed
	$(BIN)/snakemake --cores $(CORES) --configfile resources/vizgen_mouse_brain/config.yaml --replace-workflow-config

## benchmark: dense vs per-patch probability maps, and a 20000 x 20000 section (~5 min)
benchmark: $(VENV)/.installed
	$(BIN)/python workflow/benchmarks/benchmark.py

## realbench: every real example config (resources/*/config.yaml but the demo) through the whole
## pipeline both ways round (as shipped, then train and test sections swapped), each fold in a
## scratch directory ($TMPDIR/txmorph-realbench/<dataset>/<fold>); Dice per fold beside chance,
## baseline and best single CNN, the mean over folds and the lowest fold, and wall times to
## docs/realdata.md and docs/realdata.csv. REALBENCH_ARGS: e.g. --one-way (as shipped only),
## --set xenium_breast_crop:patches.per_class=500 (see python workflow/benchmarks/realbench.py -h).
## Every config runs once more with niches: $(REALBENCH_NICHES) in place of its genes (0: not).
## Each crop also runs whole as a 2 x 2 checkerboard (block folds a -> b, b -> a), and every gene
## fold gets a ceiling row (its test section's own block cross-validation, benchmarks/ceiling.py)
## and an in-sample bound (ceiling_in_sample: trained on the scored section itself).
## Quick development run (about 9 min on 2 cores): REALBENCH_ARGS=--quick (one way round, no
## niche folds, no in-sample bound).
REALBENCH_NICHES ?= 4
realbench: $(VENV)/.installed
	$(BIN)/python workflow/benchmarks/realbench.py --cores $(CORES) --niches $(REALBENCH_NICHES) $(REALBENCH_ARGS)

## test: set up the environment and run the test suite
test: $(VENV)/.installed
	$(BIN)/python -m pytest --durations=15

lint: $(VENV)/.installed
	$(BIN)/snakemake --lint

clean:
	rm -rf results .snakemake
