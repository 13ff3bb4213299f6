# Entry points: `make demo` (main job) and `make test` (test suite). Both build .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-all bench clean-venv

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt "torch==2.14.1" "torchvision==0.29.1"
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev,gurobi]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m robustmip.demo

test: $(STAMP)
	$(PY) -m pytest -q

test-all: $(STAMP)
	$(PY) -m pytest -q -m ""

bench: $(STAMP)
	$(PY) benchmarks/vnncomp_mnistfc.py

clean-venv:
	rm -rf $(VENV)
