# The two commands: `make demo` (set up and run the demo hub) and `make test` (set up and run all tests).
# `make example-delta`: the Δ-learning use case end to end on its own loopback hub (minutes).
# `make example-cdi`: the CDI use case end to end (simulate, Connect, train, publish from git, run).
# `make example-bandgap` (SIZE=…): the band-gap use case at scale; `make example-bandgap-quick`: 2,000 samples.
# `make example-bandgap-notebook`: re-executes and rewrites examples/bandgap/bandgap.ipynb (2,000 samples).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
EXTRAS ?= server,postgres,s3,dev,compat,demo,materials,ml,client,ray,science,interop
PYTEST_ARGS ?=

.PHONY: setup demo test lint format clean lock example-delta example-delta-quick example-cdi \
	example-cdi-quick example-bandgap example-bandgap-quick example-bandgap-notebook

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

# Simulated CDI → Connect → train (model.py's defaults) → publish from a git daemon on loopback →
# Forge → both servables → metrics and Figure 5; results in cdi-out/ (summary.json, figure5.png).
# The simulated sets go to examples/cdi/data/ (reused next time). MATTERHUB_URL/MATTERHUB_TOKEN
# send it to an existing hub on this machine (which must allow 127.0.0.1 as an outbound network).
example-cdi: setup
	$(BIN)/python -m examples.cdi.workflow --out cdi-out

# The same on tiny sets with one epoch of training (what CI runs, in about two minutes).
example-cdi-quick: setup
	$(BIN)/python -m examples.cdi.workflow --quick --out cdi-out

# The band-gap use case at the paper's scale (180,902 samples, 361,804 files through one Connect
# submission; SIZE=20000 for less): simulate, Connect, Forge, train, publish, encode.
SIZE ?= 180902
example-bandgap: setup
	$(BIN)/python -m examples.bandgap.workflow --size $(SIZE) --out bandgap-out

# The same on 2,000 samples with short training (what CI runs).
example-bandgap-quick: setup
	$(BIN)/python -m examples.bandgap.workflow --quick --out bandgap-out

# The same steps as notebook cells, executed on 2,000 samples on a hub of its own, written with
# their outputs to examples/bandgap/bandgap.ipynb (what is committed; a few minutes).
example-bandgap-notebook: setup
	$(BIN)/python -m examples.bandgap.notebook --quick

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
	rm -rf $(VENV) matterhub-demo matterhub-data delta-learning-out cdi-out .pytest_cache .mypy_cache .ruff_cache
