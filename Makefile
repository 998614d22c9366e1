# Keras Backend Matrix. `make matrix` runs the default profile on every backend; `make test` runs the tests.
# The host side (runner/) lives in .venv; each environment of the matrix gets its own cached virtualenv.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
ARGS   ?=

.PHONY: help matrix smoke report test test-fast lint bench-overhead clean-results engine engine-stop slurm-up slurm-down \
	bench-slurm gpu-check gpu-bundle docs

help:
	@echo "make matrix           run the matrix (default profile; pass options as ARGS='--only jax')"
	@echo "make smoke            every cell at the smoke profile (seconds per cell)"
	@echo "make report           write results/<run-id>/report/ for the latest run (ARGS='results/<run-id> ...' for others)"
	@echo "make test             lint and the test suite (builds the Keras 3 environments on first use)"
	@echo "make test-fast        the tests that need no environment, engine or cluster (about a minute)"
	@echo "make docs             the manual (docs/, MkDocs + Material) built into site/ with --strict"
	@echo "make bench-overhead   measure what the harness costs (prints overhead_ratio=...)"
	@echo "make gpu-bundle BUNDLE=DIR  where the index answers: every wheel gpu-check needs for the GPU machine's"
	@echo "                      python3 (GPU_PY_VERSION=3.12, GPU_PLATFORM=manylinux_2_28_x86_64), MNIST and this project"
	@echo "make gpu-check BUNDLE=DIR    on a GPU machine, no index or network: MLP, CNN, hierarchical RNN and twins,"
	@echo "                      gpu profile, in the machine's own python3 (GPU_PYTHON=...); a CPU cell fails it."
	@echo "                      Without BUNDLE: from .venv (KERAS_WHEEL=... if it lacks Keras). On a CPU: PROFILE=smoke ALLOW_CPU=1"
	@echo "                      SWEEP=RUN_DIR: a sweep run on this machine; its best variant per test beside the default"
	@echo "make engine           start a private Docker engine (root); prints the export lines: eval \"\$$(make -s engine)\""
	@echo "make engine-stop      stop it by its pid and clean up after it"
	@echo "make slurm-up         start a local single-node Slurm cluster with 2 fake GPUs (root); eval \"\$$(make -s slurm-up)\""
	@echo "make slurm-down       stop it by its pids"
	@echo "make bench-slurm      submit-to-start per job and 4 smoke cells on 2 Slurm slots vs. venv (wall times)"

$(VENV)/.installed: requirements-host.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "the runner needs Python >= 3.11 on the host (numpy 2.4 and pandas 3 do)")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-host.txt
	@touch $@

matrix: $(VENV)/.installed
	$(PY) -m runner $(ARGS)

smoke: $(VENV)/.installed
	$(PY) -m runner --profile smoke $(ARGS)

report: $(VENV)/.installed
	$(PY) -m runner report $(ARGS)

# The tests run in a random order (pytest-randomly), a new one each time: no test may pass on what another left
# behind. The seed is printed first; SEED=N repeats that order.
SEED ?= $(shell od -An -N4 -tu4 /dev/urandom)
SEED := $(strip $(SEED))

test: $(VENV)/.installed lint
	@echo "tests in random order, seed $(SEED) (make test SEED=$(SEED) repeats it)"
	$(PY) -m pytest -q -rs -p randomly --randomly-seed=$(SEED) $(ARGS)

# the logic alone: no test that needs an environment, an engine, a cluster or Python 3.6, one worker per core
test-fast: $(VENV)/.installed
	@echo "tests in random order, seed $(SEED) (make test-fast SEED=$(SEED) repeats it)"
	$(PY) -m pytest -q -n auto -p randomly --randomly-seed=$(SEED) \
		-m "not venv and not docker and not slurm and not py36" $(ARGS)

# the manual: docs/ and the reference pages generated from the code (tooling/docs_reference.py, via the hook in
# mkdocs.yml); --strict turns a broken link, a page left out of the nav or a missing page into a failure
docs: $(VENV)/.installed
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --clean

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

bench-overhead: $(VENV)/.installed
	$(PY) -m tooling.bench $(ARGS)

# The GPU run (runner/gpu_check.py): the machine's own interpreter and CUDA builds, through --python, the gpu profile.
# BUNDLE=DIR (a folder or tarball made by `make gpu-bundle` where the package index answers): verify it, install
# from it alone and run, with GPU_PYTHON and nothing else (no .venv, no index: runner/bundle_run.py is stdlib only).
GPU_PYTHON ?= python3
PROFILE    ?= gpu
# `make gpu-bundle BUNDLE=DIR`: the target interpreter and wheel platform (the GPU machine's python3)
GPU_PY_VERSION ?= 3.12
GPU_PLATFORM   ?= manylinux_2_28_x86_64

ifdef BUNDLE
gpu-check:
	$(GPU_PYTHON) -m runner.bundle_run $(BUNDLE) --profile $(PROFILE) $(if $(ALLOW_CPU),--allow-cpu) \
		$(if $(DATA),--data $(DATA)) $(if $(SWEEP),--sweep $(SWEEP)) $(ARGS)
else
gpu-check: $(VENV)/.installed
	$(PY) -m runner.gpu_check --python $(GPU_PYTHON) --profile $(PROFILE) $(if $(ALLOW_CPU),--allow-cpu) \
		$(if $(KERAS_WHEEL),--keras-wheel $(KERAS_WHEEL)) $(if $(DATA),--data $(DATA)) \
		$(if $(SWEEP),--sweep $(SWEEP)) $(ARGS)
endif

gpu-bundle: $(VENV)/.installed
	@test -n "$(BUNDLE)" || { echo "make gpu-bundle BUNDLE=DIR: name the bundle's (new) folder"; exit 2; }
	$(PY) -m runner.bundle $(BUNDLE) --python-version $(GPU_PY_VERSION) --platform $(GPU_PLATFORM) $(ARGS)

clean-results:
	rm -rf results

# Tooling (tooling/: tests, CI and measurement, never imported by runner/).
# A private Docker engine (tooling/engine.py) for machines without one; .ci/run starts it the same way.
engine: $(VENV)/.installed
	@$(PY) -m tooling.engine start

engine-stop: $(VENV)/.installed
	@$(PY) -m tooling.engine stop

# Clusters: a local Slurm cluster for `--executor slurm` (tooling/slurm_cluster.py); its files stay in SLURM_DIR.
SLURM_DIR ?= /tmp/kbm-slurm

slurm-up: $(VENV)/.installed
	@$(PY) -m tooling.slurm_cluster up $(SLURM_DIR)

slurm-down: $(VENV)/.installed
	@$(PY) -m tooling.slurm_cluster down $(SLURM_DIR)

bench-slurm: $(VENV)/.installed
	$(PY) -m tooling.bench_slurm $(ARGS)
