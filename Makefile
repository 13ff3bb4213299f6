# Entry points: `make demo` (main job) and `make test` (test suite). Both build .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo demo-verify study test test-all bench bench-quick clean-venv

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt "torch==2.14.1" "torchvision==0.29.1"
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev,gurobi,scip]"
	touch $(STAMP)

# The pruning-robustness study at demo size (embedded MNIST, small MLP, 10 images, HiGHS).
demo: $(STAMP)
	$(VENV)/bin/robustmip study --config demo

# Exact verification of the shipped 784-32-32-10 net on a few images (PGD first, then the MILP).
demo-verify: $(STAMP)
	$(VENV)/bin/robustmip demo

# The full-size study on full MNIST (set ROBUSTMIP_DATA or pass DATA_DIR=...): 3 seeds of PGD-trained
# 784-100-100-10 nets, pruned, calibrated eps, every optimisation to optimality; writes
# results/prune_robustness/paper_v2/ and copies the report to reports/prune_robustness/paper_v2/.
# Resumable: rerun the same command; benchmarks/study_estimate.py estimates its duration.
study: $(STAMP)
	$(VENV)/bin/robustmip study --config full --workers 2 $(if $(DATA_DIR),--data-dir $(DATA_DIR))

test: $(STAMP)
	$(PY) -m pytest -q

test-all: $(STAMP)
	$(PY) -m pytest -q -m ""

# Peers beside robustmip in the VNN-COMP runs, when given: ABCROWN=DIR (the user's own alpha-beta-CROWN
# checkout; ABCROWN_PYTHON its interpreter) and MARABOU_PYTHON (an interpreter with maraboupy).
VNN_PEERS = --tools robustmip$(if $(ABCROWN),$(comma)abcrown)$(if $(MARABOU_PYTHON),$(comma)marabou) \
	$(if $(ABCROWN),--abcrown $(ABCROWN) --abcrown-python $(or $(ABCROWN_PYTHON),python3)) \
	$(if $(MARABOU_PYTHON),--marabou-python $(MARABOU_PYTHON))
comma := ,

# Speed benchmarks (not part of make test); see benchmarks/README.md. Needs the trained nets in
# results/models/ (commands in benchmarks/README.md) and, for VNN-COMP, ROBUSTMIP_VNNCOMP.
bench: $(STAMP)
	$(PY) benchmarks/milp_targeted.py --nets mlp-50-50 --eps 0.05 --images 20 --solver highs,gurobi --clean-start --clean-start-images 3 --omlt --omlt-images 2
	@if [ -n "$$ROBUSTMIP_VNNCOMP" ]; then $(PY) benchmarks/vnncomp_mnistfc.py $(VNN_PEERS); \
	else echo "VNN-COMP mnist_fc skipped: set ROBUSTMIP_VNNCOMP=DIR (benchmarks/README.md)"; fi

# The first 4 VNN-COMP mnist_fc instances of each net (about 10 minutes for robustmip alone).
bench-quick: $(STAMP)
	@if [ -n "$$ROBUSTMIP_VNNCOMP" ]; then $(PY) benchmarks/vnncomp_mnistfc.py --quick --name vnncomp_quick $(VNN_PEERS); \
	else echo "VNN-COMP mnist_fc skipped: set ROBUSTMIP_VNNCOMP=DIR (benchmarks/README.md)"; fi

clean-venv:
	rm -rf $(VENV)
