# Two commands do all set-up: `make test` and `make reproduce` (each runs `make setup` first if needed).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

PROFILE ?= auto

.PHONY: setup test lint reproduce lab site site-check bench clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install -e ".[test,notebooks]"
	touch $(STAMP)

test: setup lint
	$(BIN)/python -m pytest

# ruff: lint rules and formatting, configured in pyproject.toml (`ruff format mh tests benchmarks` applies it)
lint: setup
	$(BIN)/ruff check mh tests benchmarks
	$(BIN)/ruff format --check mh tests benchmarks

# Regenerate every table and figure (smoke profile on CPU, gpu profile with CUDA; PROFILE=... to choose).
reproduce: setup
	$(BIN)/python -m mh.repro.reproduce --profile $(PROFILE)

# JupyterLab on this environment's kernel ("mambahash-companion"), opened on notebooks/ (LAB_ARGS=--no-browser …)
lab: setup
	$(BIN)/python -m mh.repro.lab $(LAB_ARGS)

# The executed notebooks (notebooks/executed/, written by make reproduce) as a static site in site/
site: setup
	$(BIN)/python -m mh.repro.site build

# Open the site in headless Chromium (apt-get install chromium): screenshots in site/_screenshots/
site-check: setup
	$(BIN)/python -m mh.repro.site check

bench: setup
	$(BIN)/python benchmarks/bench_scan.py
	$(BIN)/python benchmarks/bench_map.py

clean-venv:
	rm -rf $(VENV)
