# The two commands: `make demo` (set up and run the demo hub) and `make test` (set up and run all tests).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
EXTRAS ?= server,postgres,s3,dev,compat,demo,materials,ml,client,ray,science
PYTEST_ARGS ?=

.PHONY: setup demo test lint format clean lock

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
	rm -rf $(VENV) matterhub-demo matterhub-data .pytest_cache .mypy_cache .ruff_cache
