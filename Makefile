# Two entry points (see README.md): `make benchmark` and `make test`. Both set up .venv first.
VENV ?= .venv
CORES ?= 2
PYTHON ?= python3
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: benchmark test setup clean-results

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --disable-pip-version-check -q -e '.[test,mnist5k]'
	touch $@

benchmark: setup
	snakemake --cores $(CORES)

test: setup
	python -m pytest

clean-results:
	rm -rf results/runs results/tables results/stats results/selection results/figures .snakemake
