# neurotext: `make run` sets up and runs the embedded default; `make test` sets up and runs the tests.
VENV ?= .venv
PY := $(VENV)/bin/python
CORES ?= 2
PYTEST_ARGS ?=
TEST_WORKERS ?= 2

.PHONY: setup run test lint clean-results help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

setup: $(VENV)/.neurotext-setup  ## create the virtualenv with pinned dependencies

$(VENV)/.neurotext-setup: requirements.txt requirements.lock requirements-nodeps.txt pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -r requirements.txt -c requirements.lock
	$(PY) -m pip install -q --no-deps -r requirements-nodeps.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

run: setup  ## run the embedded default workflow (results/demo/)
	$(VENV)/bin/snakemake --cores $(CORES)

test: setup  ## run the test suite (TEST_WORKERS=2 pytest-xdist workers; end-to-end and SLURM files on one of them)
	$(VENV)/bin/python -m pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

lint: setup  ## snakemake --lint and snakefmt --check
	$(VENV)/bin/snakemake --lint
	$(VENV)/bin/snakefmt --check Snakefile workflow/rules

clean-results:  ## remove results/ (keeps downloaded resources/)
	rm -rf results .snakemake
