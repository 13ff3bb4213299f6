# Entry points: `make demo` (main job) and `make test` (test suite). Both build .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo demo-verify study test test-all bench clean-venv

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt "torch==2.14.1" "torchvision==0.29.1"
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev,gurobi]"
	touch $(STAMP)

# The pruning-robustness study at demo size (embedded MNIST, small MLP, 10 images, HiGHS).
demo: $(STAMP)
	$(VENV)/bin/robustmip study --config demo

# Exact verification of the shipped 784-32-32-10 net on a few images (PGD first, then the MILP).
demo-verify: $(STAMP)
	$(VENV)/bin/robustmip demo

# The full-size study on full MNIST (set ROBUSTMIP_DATA or pass DATA_DIR=...). Its original net,
# PGD-trained (eps 0.1, 20 epochs, about 2.5 min on one core), is trained first when missing.
STUDY_NET := results/models/mlp-100-100-pgd0.1.pt
$(STUDY_NET): | $(STAMP)
	$(VENV)/bin/robustmip train --arch mlp-100-100 --epochs 20 --adv-eps 0.1 --pgd-steps 10 --pgd-step-size 0.025 \
		--eps-ramp-epochs 5 --threads 1 --seed 0 --out $@ $(if $(DATA_DIR),--data-dir $(DATA_DIR))

study: $(STAMP) $(STUDY_NET)
	$(VENV)/bin/robustmip study --config paper $(if $(DATA_DIR),--data-dir $(DATA_DIR))

test: $(STAMP)
	$(PY) -m pytest -q

test-all: $(STAMP)
	$(PY) -m pytest -q -m ""

# Speed benchmarks (not part of make test); see benchmarks/README.md. Needs the trained nets in
# results/models/ (commands in benchmarks/README.md) and, for VNN-COMP, ROBUSTMIP_VNNCOMP.
bench: $(STAMP)
	$(PY) benchmarks/milp_targeted.py --nets mlp-50-50 --eps 0.05 --images 20 --solver highs,gurobi --clean-start --clean-start-images 3 --omlt --omlt-images 2
	@if [ -n "$$ROBUSTMIP_VNNCOMP" ]; then $(PY) benchmarks/vnncomp_mnistfc.py; \
	else echo "VNN-COMP mnist_fc skipped: set ROBUSTMIP_VNNCOMP=DIR (benchmarks/README.md)"; fi

clean-venv:
	rm -rf $(VENV)
