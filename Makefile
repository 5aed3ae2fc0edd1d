# Two commands on a fresh machine: `make sweep` runs the project's main job, `make test` the tests.
# Both create .venv and install the project into it first: once, and again when pyproject.toml or the
# PyTorch build asked for (TORCH, TORCH_BUILD, PIP_TORCH_FLAGS) changes.
PYTHON ?= python3
VENV ?= .venv

# --- PyTorch: which build -----------------------------------------------------------------------
TORCH ?= torch==2.13.0
# cpu, cuda, or auto: cuda where nvidia-smi lists a GPU, else cpu. PyPI's Linux wheel of torch is the
# CUDA build (with its nvidia-* wheels, 2-3 GB to download): a machine without a GPU gets the CPU
# build (about 190 MB) from PyTorch's CPU index instead.
TORCH_BUILD ?= auto
NVIDIA_SMI ?= nvidia-smi
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
# Your own pip options for torch, e.g. --index-url https://download.pytorch.org/whl/cu126 for another
# CUDA version; when given, the CPU index is not added.
PIP_TORCH_FLAGS ?=

ifeq ($(TORCH_BUILD),auto)
override TORCH_BUILD := $(shell $(NVIDIA_SMI) -L >/dev/null 2>&1 && echo cuda || echo cpu)
TORCH_WHY := auto: $(if $(filter cuda,$(TORCH_BUILD)),nvidia-smi lists a GPU,no NVIDIA GPU found by $(NVIDIA_SMI))
else
TORCH_WHY := TORCH_BUILD=$(TORCH_BUILD)
endif
ifeq ($(filter cpu cuda,$(TORCH_BUILD)),)
$(error TORCH_BUILD must be auto, cpu or cuda, not '$(TORCH_BUILD)')
endif

# The CPU index is added only where it answers: a machine that reaches only PyPI or a mirror (CI,
# the project's own machines, which find the CPU wheel locally) then installs as before, instead of
# waiting on pip's retries. Probed once, and only when torch is installed (or `make -n` shows it).
cpu_index_flags = $(eval cpu_index_flags := $(shell $(PYTHON) -c "import urllib.request as u; u.urlopen('$(TORCH_CPU_INDEX)/torch/', timeout=5)" >/dev/null 2>&1 && echo --extra-index-url $(TORCH_CPU_INDEX)))$(cpu_index_flags)
torch_flags = $(if $(strip $(PIP_TORCH_FLAGS)),$(PIP_TORCH_FLAGS),$(if $(filter cpu,$(TORCH_BUILD)),$(cpu_index_flags)))
torch_source = $(if $(strip $(PIP_TORCH_FLAGS)),pip options: $(PIP_TORCH_FLAGS),$(if $(filter cpu,$(TORCH_BUILD)),$(if $(cpu_index_flags),from PyTorch's CPU index $(TORCH_CPU_INDEX),PyTorch's CPU index did not answer: from pip's own index (a local CPU wheel if there is one; on PyPI for Linux the CUDA build)),from pip's own index (PyPI: the CUDA build for Linux)))

# The stamp holds the build it installed: asking for another one (TORCH=…, TORCH_BUILD=…,
# PIP_TORCH_FLAGS=…) remakes the environment from scratch, since pip keeps an installed torch of the
# same version whatever its build.
TORCH_SPEC := $(strip $(TORCH_BUILD) $(TORCH) $(PIP_TORCH_FLAGS))
ifneq ($(TORCH_SPEC),$(strip $(shell cat $(VENV)/.installed 2>/dev/null)))
.PHONY: $(VENV)/.installed
VENV_CLEAR := $(if $(wildcard $(VENV)/bin/python),--clear)
endif

# --- the sweep and the notebook ---------------------------------------------------------------------
SWEEP_ARGS ?= --num-samples 200
# `make sweep` writes RESULTS/SWEEP: by default runs/ (not committed) and a new name per run, so it
# never overwrites the committed results/sweep and can be run again. `make notebook` opens
# results/heatmaps.ipynb on RESULTS/SWEEP: by default the latest sweep under runs/, else the
# committed one.
RESULTS ?=
SWEEP ?=
SWEEP_STAMP := sweep-$(shell date +%Y%m%d-%H%M%S)
JUPYTER_ARGS ?=
PYTEST_ARGS ?=

.PHONY: install sweep notebook results-notebook answer test test-fast lint

$(VENV)/.installed: pyproject.toml
	@echo "PyTorch: $(TORCH), $(TORCH_BUILD) build ($(TORCH_WHY)); $(torch_source)"
	$(PYTHON) -m venv $(VENV_CLEAR) $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q $(torch_flags) "$(TORCH)"
	$(VENV)/bin/python -m pip install -q -e ".[dev,notebook]"
	echo '$(TORCH_SPEC)' > $@

install: $(VENV)/.installed

sweep: install
	$(VENV)/bin/python sweep/run.py --results-dir $(or $(RESULTS),runs) --name $(or $(SWEEP),$(SWEEP_STAMP)) $(SWEEP_ARGS)
	@echo "Open it in the notebook: make notebook$(if $(RESULTS), RESULTS=$(RESULTS))$(if $(SWEEP), SWEEP=$(SWEEP))"

notebook: install
	$(VENV)/bin/python -m dotmlp.notebook lab $(if $(RESULTS),--results-dir $(RESULTS)) $(if $(SWEEP),--name $(SWEEP)) $(JUPYTER_ARGS)

# Re-executes every cell of results/heatmaps.ipynb on the committed results/sweep and saves the
# outputs in it: run it after results/ or the notebook change (a test fails until then).
results-notebook: install
	$(VENV)/bin/python -m dotmlp.notebook execute

# The answer from the frontier search's ledger: results/answer.csv, the law across dimensions and the
# price of learning (law*.csv, price.*), answer.png with the law's line, the READMEs' tables, then the
# notebook that shows them (tests/test_readme.py and test_notebook.py check they agree).
answer: install
	$(VENV)/bin/python -m dotmlp.study.frontier --no-figure
	$(VENV)/bin/python -m dotmlp.study.frontier_depth
	$(VENV)/bin/python -m dotmlp.study.frontier_flag
	$(VENV)/bin/python -m dotmlp.study.law_across
	$(VENV)/bin/python -m dotmlp.study.answer_figure
	$(VENV)/bin/python -m dotmlp.study.readme
	$(VENV)/bin/python -m dotmlp.notebook execute

# PYTEST_WORKERS=2 runs pytest in two processes (pytest-xdist, a test file each at a time, so that a
# file's tests share their module's Ray runtime): 12 min against about 14 on 2 cores, but one such
# run hung in a Ray test (test_ray_internals' saved-state test, its trial never reporting) while the
# other process ran Ray too. One cause is fixed (a bare ray.init() there joined the cluster the other
# process's multi-node test had running); CI runs in one process (0) until two clean runs show it.
PYTEST_WORKERS ?= 0
PYTEST_PARALLEL = -n $(PYTEST_WORKERS) --dist loadfile

# --durations: CI's log then names the slowest tests, the ones to look at when the suite grows.
test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest $(PYTEST_PARALLEL) --durations=20 $(PYTEST_ARGS)

# Everything but the tests marked slow (real sweeps, the multi-node cluster, executing the notebook);
# the offline cluster-config tests (marked distributed, not slow) are in.
test-fast: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest $(PYTEST_PARALLEL) -m "not slow" $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
