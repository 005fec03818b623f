# Two entry points (see README.md): `make benchmark` and `make test` (which lints first). Both set up .venv first.
VENV ?= .venv
CORES ?= 2
PYTHON ?= python3
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: benchmark test test-fast lint setup clean-results

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --disable-pip-version-check -q -e '.[test,mnist5k]'
	touch $@

benchmark: setup
	snakemake --cores $(CORES)

# Zero findings or it fails: ruff on the Python code, Snakemake's linter on the workflow with the default
# config and with the smoke config (a config decides which rules and functions are reached).
lint: setup
	ruff check src tests bench tools
	snakemake --lint
	snakemake --lint --configfile config/smoke.yaml

# -ra: the summary lists every skipped test with its reason, which says how to enable it (system packages:
# sudo .ci/provision).
test: setup lint
	python -m pytest -ra

# The edit-test loop: unit tests only (no Snakemake, no subprocesses, nothing that trains for long); about
# a minute of CPU (one pytest process). `make test` (CI's) still runs every test.
test-fast: setup
	ruff check src tests bench tools
	python -m pytest -q -m "not slow and not workflow and not system"

clean-results:
	rm -rf results/runs results/selection results/default results/paper results/mnist5k results/smoke .snakemake
