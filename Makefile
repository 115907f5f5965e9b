# citykit — `make help` lists the targets. Every target sets up the virtual environment first.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CITYKIT := $(BIN)/citykit
DEMO_OUT ?= reports/demo
TEST_WORKERS ?= auto  # pytest-xdist workers; each test file runs on one worker (kernels idle while starting)

.DEFAULT_GOAL := help
.PHONY: help setup demo test lab lab-instructor bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

setup: $(VENV)/.installed ## create .venv if missing and install citykit with its test extra

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@# rfc3987-syntax is an optional jsonschema format checker that costs ~1.1 s in every process
	@# importing nbformat (kernels, graders, report runs); nothing in the stack needs IRI validation.
	$(BIN)/python -m pip uninstall --quiet --yes rfc3987-syntax || true
	@touch $@

demo: setup ## build the synthetic city, generate the student versions, run module 04 as a report
	$(CITYKIT) data build
	$(CITYKIT) grade generate time-to-close
	$(CITYKIT) report run time-to-close --out $(DEMO_OUT)
	@echo
	@echo "Done. Outputs:"
	@echo "  published data     datasets/published/riverton/   (raw export, with fake personal data: datasets/raw/)"
	@echo "  student versions   grading/release/"
	@echo "  report             $(DEMO_OUT)/04-time-to-close.html"
	@echo "Open JupyterLab on the released course with:  make lab"

test: setup tests/.node/node_modules/axe-core ## run the whole test suite (builds the bundled dataset once if needed)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

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
	rm -rf datasets/raw datasets/published grading/release grading/submitted grading/autograded \
	       grading/feedback grading/gradebook.db reports
