# The README's two commands: `make train` and `make test`. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Installs are skipped when setup.cfg has not changed since the last one.
RUN_STAMP  := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test

.PHONY: train test lint bench docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The package and what it needs to run (numpy, Pillow, matplotlib, tqdm, graphviz).
$(RUN_STAMP): $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# Plus what the tests, the notebooks and the docs need.
$(TEST_STAMP): $(RUN_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# The chapter's two models on the sample shipped in the package: the linear classifier, then the
# two-layer net; then an MLP on the ten-digit sample. Pass e.g. ARGS="--data ~/.fastai/data/mnist_sample" to train on the full data.
train: $(RUN_STAMP)
	$(BIN)/microgradx train --model linear --out runs/linear $(ARGS)
	$(BIN)/microgradx train --model mlp --out runs/mlp $(ARGS)
	$(BIN)/microgradx train --sample digits --model mlp --out runs/digits_mlp $(ARGS)

test: $(TEST_STAMP)
	@sh scripts/ensure_graphviz.sh
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

bench: $(RUN_STAMP)
	$(BIN)/python benchmarks/run.py $(ARGS)

# The documentation site, into site/ (the test suite builds it too). Live preview: .venv/bin/mkdocs serve
docs: $(TEST_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache .hypothesis site
