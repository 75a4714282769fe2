# The two commands: `make demo` (set up and run the demo hub) and `make test` (set up and run all tests).
# `make example-delta`: the Δ-learning use case end to end on its own loopback hub (minutes).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
EXTRAS ?= server,postgres,s3,dev,compat,demo,materials,ml,client,ray,science
PYTEST_ARGS ?=

.PHONY: setup demo test lint format clean lock example-delta example-delta-quick

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "MatterHub needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# constraints.txt pins a known-good set: no resolver backtracking, same versions everywhere.
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[$(EXTRAS)]'
	# The PyTorch servable tests: the CPU build this machine keeps on disk (a bare `torch` is GBs).
	$(BIN)/python -m pip install --quiet -c constraints.txt torch==2.13.0
	touch $@

demo: setup
	$(BIN)/matterhub demo

# Data → Connect → Forge → train → publish → use; results in delta-learning-out/ (summary.json,
# parity.png, the trained model). Its own hub lives in a temporary folder; MATTERHUB_URL and
# MATTERHUB_TOKEN in the environment send it to an existing hub instead.
example-delta: setup
	$(BIN)/python -m examples.delta_learning.workflow --out delta-learning-out

# The same on 12 molecules with one epoch of training (what CI runs, in about a minute).
example-delta-quick: setup
	$(BIN)/python -m examples.delta_learning.workflow --quick --out delta-learning-out

test: setup
	$(BIN)/python -m pytest -v $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check src tests examples bench
	$(BIN)/ruff format --check src tests examples bench
	$(BIN)/mypy
	$(BIN)/lint-imports

format: setup
	$(BIN)/ruff check --fix src tests examples bench
	$(BIN)/ruff format src tests examples bench

lock: setup
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^matterhub' > constraints.txt

clean:
	rm -rf $(VENV) matterhub-demo matterhub-data delta-learning-out .pytest_cache .mypy_cache .ruff_cache
