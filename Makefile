# Two commands on a fresh machine: `make sweep` runs the project's main job, `make test` the tests.
# Both create .venv and install the project into it first (once; again when pyproject.toml changes).
PYTHON ?= python3
VENV ?= .venv
# A CPU build of torch (installed from this machine's disk here). On a GPU machine pass the build
# your CUDA needs, e.g. make TORCH='torch==2.13.0' PIP_TORCH_FLAGS='--index-url <PyTorch's CUDA index>'.
TORCH ?= torch==2.13.0
PIP_TORCH_FLAGS ?=
SWEEP_ARGS ?= --num-samples 200
PYTEST_ARGS ?=

.PHONY: install sweep test test-fast lint bench

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q $(PIP_TORCH_FLAGS) "$(TORCH)"
	$(VENV)/bin/python -m pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed

sweep: install
	$(VENV)/bin/python sweep/run.py $(SWEEP_ARGS)

test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

test-fast: install
	$(VENV)/bin/python -m pytest -m "not slow and not distributed" $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
