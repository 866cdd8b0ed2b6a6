# Each target installs what it needs into .venv first (torch pinned to the CPU build).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test docs lint benchmark benchmark-quick gpu-check

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[test,plot,skops,optuna,onnx,dask,benchmark,docs]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m skflash.demo

test: $(STAMP)
	$(BIN)/ruff check skflash tests benchmarks examples docs
	$(BIN)/ruff format --check skflash tests benchmarks examples docs
	$(BIN)/python -m pytest -n 2 -q

# The documentation site, offline, every warning an error, every gallery example run.
docs: $(STAMP)
	$(BIN)/python -m sphinx -W --keep-going -b html docs docs/_build/html

benchmark: $(STAMP)
	$(BIN)/python -m benchmarks.run

benchmark-quick: $(STAMP)
	$(BIN)/python -m benchmarks.run --quick

gpu-check: $(STAMP)
	PYTHON=$(BIN)/python bash benchmarks/gpu_check.sh
