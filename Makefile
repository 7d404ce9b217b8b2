# Two commands do all set-up: `make test` and `make reproduce` (each runs `make setup` first if needed).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Exact versions with hashes of everything the CPU environment installs (the project's dependencies, its test
# and notebooks extras, torch and torchvision): `make lock` writes it from pyproject.toml and requirements/cpu.in
LOCK := requirements/cpu.lock
LOCK_VENV := .venv-lock

PROFILE ?= auto

.PHONY: setup lock test lint reproduce rehearse lab site site-check bench clean-venv

setup: $(STAMP)

# The lock, hash-checked, then the project itself without dependencies (all of them came from the lock)
$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --require-hashes --no-deps -r $(LOCK)
	$(BIN)/python -m pip install --no-deps --no-build-isolation -e .
	touch $(STAMP)

# pip-tools in a venv of its own, so that the project's environment holds exactly the lock
lock:
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet "pip-tools>=7.4,<8"
	$(LOCK_VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
		--no-emit-index-url --no-emit-find-links --extra test --extra notebooks \
		--output-file $(LOCK) pyproject.toml requirements/cpu.in

test: setup lint
	$(BIN)/python -m pytest

# ruff: lint rules and formatting, configured in pyproject.toml (`ruff format mh tests benchmarks` applies it)
lint: setup
	$(BIN)/ruff check mh tests benchmarks
	$(BIN)/ruff format --check mh tests benchmarks

# Regenerate every table and figure (smoke profile on CPU, gpu profile with CUDA; PROFILE=... to choose);
# DOWNLOAD=1 fetches CIFAR-10 through torchvision first when it is missing.
reproduce: setup
	$(BIN)/python -m mh.repro.reproduce --profile $(PROFILE) $(if $(DOWNLOAD),--download)

# The gpu profile's code paths on the CPU (full-size networks, 224 px, 4 bit lengths, workers, fast path) on tens
# of images, into results/cache/rehearsal/: touches no committed output (mh.repro.rehearse)
rehearse: setup
	$(BIN)/python -m mh.repro.rehearse

# JupyterLab on this environment's kernel ("mambahash-companion"), opened on notebooks/ (LAB_ARGS=--no-browser …)
lab: setup
	$(BIN)/python -m mh.repro.lab $(LAB_ARGS)

# The executed notebooks (notebooks/executed/<profile>/, written by make reproduce) as a book in site/ (Sphinx, MyST-NB)
site: setup
	$(BIN)/python -m mh.repro.site build

# Every page of the site in headless Chromium (apt-get install chromium): fails on errors, broken math, empty search; screenshots in site/_screenshots/
site-check: setup
	$(BIN)/python -m mh.repro.site check

bench: setup
	$(BIN)/python benchmarks/bench_scan.py
	$(BIN)/python benchmarks/bench_map.py
	$(BIN)/python benchmarks/bench_train.py --json results/bench/train-$$(uname -n).json

clean-venv:
	rm -rf $(VENV)
