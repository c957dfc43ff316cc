# Two entry points for a fresh machine: `make demo` and `make test`. Each builds the local
# virtualenv from pyproject.toml first, and `make test` brings up the system packages its tests
# drive (.ci/system-deps), so nothing has to be installed by hand.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast lint typecheck venv report clean ui system-deps

venv: $(STAMP)

# The stamp tracks pyproject.toml (and the extras listed here), so a changed dependency list
# reinstalls and nothing else does. The cluster extras are there for the SLURM and Ray
# end-to-end tests (tests/test_cluster_slurm.py, tests/test_cluster_ray.py).
EXTRAS := dev,slurm,ray
$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $(STAMP)
	@echo "Installed into $(VENV)/. To put mnv1-train, mnv1-plan and the other console scripts on"
	@echo "the PATH of a shell, run in it:  . $(VENV)/bin/activate"

# ruff, the format check, and the layer contract (.importlinter: no module imports from a layer
# above its own).
lint: $(STAMP)
	$(BIN)/ruff check mnv1 tracking tests conf experiments
	$(BIN)/ruff format --check mnv1 tracking tests conf experiments
	.ci/layers $(BIN)/python

typecheck: $(STAMP)
	.ci/typecheck $(BIN)/python

# The system packages the end-to-end tests drive for real (SLURM and munge, PostgreSQL,
# Chromium): installed where missing when run as root; otherwise, if any is missing, one line
# names the apt-get command and make stops before any test runs.
system-deps:
	.ci/system-deps

# Both test targets run pytest on TEST_WORKERS pytest-xdist workers (two: one per core of the
# 2-vCPU machines the suite is sized for; TEST_WORKERS=0 runs it in this one process). Tests
# that share a module- or session-scoped fixture (a sweep, a server) form one group that stays
# on one worker (--dist loadgroup), and the work is handed out longest first, in the order
# tests/schedule_support.py gives it (--no-loadscope-reorder keeps that order).
TEST_WORKERS ?= 2
XDIST := -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder

# The whole suite: fast tests and the slow end-to-end ones (marker `slow`) in one pytest run,
# ending with its 15 slowest tests. The suite runs on the CPU (no test needs a GPU): TensorFlow
# is kept from looking for one, and its start-up lines are hidden.
test: system-deps lint typecheck
	CUDA_VISIBLE_DEVICES= TF_CPP_MIN_LOG_LEVEL=2 \
	    $(BIN)/python -m pytest -m "slow or not slow" $(XDIST) --durations=15 $(PYTEST_ARGS)

# Fast tests only: what a developer runs between edits.
test-fast: $(STAMP)
	$(BIN)/python -m pytest $(XDIST) $(PYTEST_ARGS)

# The 16-cell α × ρ grid on the embedded synthetic dataset; the sweep ends by writing its report
# to reports/demo/ (and logging it on the sweep's parent run in MLflow).
demo: $(STAMP)
	$(BIN)/mnv1-train -m experiment=demo

# The MLflow UI on ./mlflow.db (or $$MLFLOW_TRACKING_URI), on 127.0.0.1:5000 only; every sweep
# ends by printing the URL of its runs there.
ui: $(STAMP)
	$(BIN)/mnv1-ui

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache multirun outputs reports
