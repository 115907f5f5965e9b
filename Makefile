# citykit — `make help` lists the targets. Every target sets up the virtual environment first.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CITYKIT := $(BIN)/citykit
DEMO_OUT ?= reports/demo
TEST_WORKERS ?= auto  # pytest-xdist workers; a file (or a module's tests) runs on one worker (kernels idle while starting)

.DEFAULT_GOAL := help
.PHONY: help setup demo test lint lab lab-instructor bench constraints clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

setup: $(VENV)/.installed ## create .venv if missing and install citykit with its test extra

$(VENV)/.installed: pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	@# rfc3987-syntax is an optional jsonschema format checker that costs ~1.1 s in every process
	@# importing nbformat (kernels, graders, report runs); nothing in the stack needs IRI validation.
	@# (citykit's own processes also skip it where it stays installed: citykit/startup.py)
	$(BIN)/python -m pip uninstall --quiet --yes rfc3987-syntax || true
	@touch $@

demo: setup ## build the synthetic city, generate module 04's student version, run it as a report (citykit demo)
	$(CITYKIT) demo --out $(DEMO_OUT)

test: setup lint tests/.node/node_modules/axe-core ## lint, then run the whole test suite (builds the bundled dataset once if needed)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup --durations=15

lint: setup ## ruff (lint and format check) and the import contracts (layers, no cycles)
	$(BIN)/ruff check citykit tests benchmarks setup.py
	$(BIN)/ruff format --check citykit tests benchmarks setup.py
	$(BIN)/lint-imports

constraints: setup ## pin constraints.txt to what is installed in .venv (after changing dependencies)
	@(echo "# The versions make test ran on: make setup, CI and the wheel test install with -c constraints.txt."; \
	  echo "# Regenerate after changing dependencies with: make constraints"; \
	  $(BIN)/python -m pip freeze --exclude-editable | grep -v -e '^citykit' -e '^rfc3987-syntax' \
	  | sed -e 's/^soupsieve==.*/& ; python_full_version >= "3.11.5"/') > constraints.txt
	@# soupsieve 4 needs Python 3.11.5; Debian 12's python3 is 3.11.2 and takes what pip picks there

# axe-core (npm, pinned in tests/package.json) for the accessibility test; skipped where npm is absent.
tests/.node/node_modules/axe-core: tests/package.json tests/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  mkdir -p tests/.node && cp tests/package.json tests/package-lock.json tests/.node/ && \
	  npm ci --prefix tests/.node --no-audit --no-fund --silent; \
	else echo "npm not found: the accessibility test will be skipped"; fi

lab: setup ## open JupyterLab for a learner on the released notebooks (token on)
	$(CITYKIT) lab

lab-instructor: setup ## open JupyterLab with formgrader for manual grading (token on)
	$(CITYKIT) lab --instructor

bench: setup ## run the benchmarks (ratios against plain papermill / nbgrader)
	@for script in benchmarks/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean: ## remove generated data, grading folders and reports (keeps .venv)
	rm -rf datasets/raw datasets/published datasets/imported grading/release grading/submitted grading/autograded \
	       grading/feedback grading/gradebook.db reports
