# podium: every target parses its variables and calls the `podium` command.
# Run `make help` for the list.

PYTHON_BASE ?= python3
VENV        := .venv
PY          := $(VENV)/bin/python
PODIUM      := $(VENV)/bin/podium
STAMP       := $(VENV)/.installed

CONFIG ?= configs/demo.yaml
FOLD   ?= 0
FOLDS  ?=
ARGS   ?=
RESUME ?= 0
SUBMISSION ?=
EXP    ?=
ROUNDS ?=
GPUS   ?=
PARALLEL_FOLDS ?= 0

# Optional flags passed only when the variable is set.
FOLDS_FLAG  := $(if $(FOLDS),--folds $(FOLDS),)
RESUME_FLAG := $(if $(filter 1 true yes,$(RESUME)),--resume,)
SUB_FLAG    := $(if $(SUBMISSION),--submission $(SUBMISSION),)
EXP_FLAG    := $(if $(EXP),--experiment $(EXP),)
ROUNDS_ARG  := $(if $(ROUNDS),pseudo.rounds=$(ROUNDS),)
# GPUS=N runs one process per GPU through torchrun; without it, one plain process.
LAUNCH      := $(if $(GPUS),$(VENV)/bin/torchrun --standalone --nproc_per_node=$(GPUS) -m podium.cli,$(PODIUM))
PARALLEL_FLAG := $(if $(filter 1 true yes,$(PARALLEL_FOLDS)),--parallel-folds,)

.DEFAULT_GOAL := help
.PHONY: help setup demo-data folds train train-all lr-plot oof infer score baseline pseudo leaderboard sync demo test bench clean

help: ## List targets and the variables they take
	@echo "Usage: make TARGET [CONFIG=configs/demo.yaml] [FOLD=0] [FOLDS=0,1] [RESUME=1] [GPUS=4] [ARGS=\"optim.lr=1e-3\"]"
	@echo
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-11s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON_BASE) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -e ".[test]"
	touch $(STAMP)

setup: $(STAMP) ## Create .venv and install the pinned packages and podium (runs once)

demo-data: $(STAMP) ## Write the demo competition (scikit-learn digits) into input/
	$(PY) scripts/make_demo_competition.py --out input

folds: $(STAMP) ## Split train.csv into folds: outputs/folds.csv (CONFIG, ARGS)
	$(PODIUM) folds --config $(CONFIG) $(ARGS)

train: $(STAMP) ## Train one fold (FOLD, CONFIG, ARGS, RESUME=1 continues, GPUS=4 runs DDP)
	$(LAUNCH) train --config $(CONFIG) --fold $(FOLD) $(RESUME_FLAG) $(ARGS)

train-all: $(STAMP) ## Train every fold (CONFIG, ARGS, RESUME, GPUS; PARALLEL_FOLDS=1: one fold per GPU)
	$(LAUNCH) train-all --config $(CONFIG) $(RESUME_FLAG) $(PARALLEL_FLAG) $(ARGS)

lr-plot: $(STAMP) ## Save the learning-rate schedule as a PNG, without training (CONFIG, ARGS)
	$(PODIUM) lr-plot --config $(CONFIG) $(ARGS)

oof: $(STAMP) ## Out-of-fold report: CV score, per-class metrics, PNGs (CONFIG, FOLDS)
	$(PODIUM) oof --config $(CONFIG) $(FOLDS_FLAG) $(ARGS)

infer: $(STAMP) ## Fold ensemble + TTA on the test set: submissions/<name>.csv (CONFIG, FOLDS)
	$(PODIUM) infer --config $(CONFIG) $(FOLDS_FLAG) $(ARGS)

score: $(STAMP) ## Score a submission against input/demo_solution.csv (CONFIG, SUBMISSION)
	$(PODIUM) score --config $(CONFIG) $(SUB_FLAG) $(ARGS)

baseline: $(STAMP) ## Train scikit-learn's SVC on the same folds and print its CV macro-F1 (CONFIG)
	$(PODIUM) baseline --config $(CONFIG) $(ARGS)

pseudo: $(STAMP) ## Pseudo-label test images with a finished experiment, retrain all folds, report, infer (EXP, ROUNDS)
	$(PODIUM) pseudo --config $(CONFIG) $(EXP_FLAG) $(ROUNDS_ARG) $(ARGS)

leaderboard: $(STAMP) ## Table of every experiment under outputs/, best CV first: outputs/leaderboard.md
	$(PODIUM) leaderboard --config $(CONFIG) $(ARGS)

sync: $(STAMP) ## Upload the offline W&B runs under outputs/wandb (needs `wandb login` first)
	@runs="$$(ls -d outputs/wandb/offline-run-* 2>/dev/null)"; \
	if [ -z "$$runs" ]; then echo "no offline W&B runs under outputs/wandb"; else $(VENV)/bin/wandb sync $$runs; fi

demo: $(STAMP) ## The whole pipeline on the demo competition, from data to a scored submission
	$(MAKE) demo-data
	$(MAKE) folds CONFIG=configs/demo.yaml
	$(MAKE) train-all CONFIG=configs/demo.yaml
	$(MAKE) oof CONFIG=configs/demo.yaml
	$(MAKE) infer CONFIG=configs/demo.yaml
	$(MAKE) score CONFIG=configs/demo.yaml
	$(MAKE) baseline CONFIG=configs/demo.yaml

test: $(STAMP) ## Run the test suite on the CPU (a few minutes)
	$(PY) -m pytest

# Lightning is only the benchmark's reference, so it is installed here and not in pyproject.toml.
bench: $(STAMP) ## Benchmarks against bare PyTorch and Lightning, printed as ratios (installs lightning; about 7 min on 2 idle cores)
	$(PY) -m pip install --quiet lightning==2.6.6 || echo "bench: lightning could not be installed; the Lightning comparison will be skipped"
	$(PY) bench/run_all.py

clean: ## Remove outputs/ and submissions (keeps .venv and input/)
	rm -rf outputs
	find submissions -type f ! -name README.md -delete
