# Two commands do all the set-up on a fresh clone:
#   make demo       # creates .venv if missing, then compiles, draws and briefly trains a network
#   make test-all   # creates .venv if missing, then runs the whole test suite (what CI runs)
# `make test` runs the quick part alone (every test not marked slow), for the edit-test loop.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow test-all lint bench fuzz clean-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/python -m compileall -q resdsl >/dev/null  # bytecode even where PYTHONDONTWRITEBYTECODE is set
	@command -v dot >/dev/null || echo "note: Graphviz's dot is missing; 'apt-get install graphviz' for svg/png/pdf diagrams"
	touch $(STAMP)

demo: $(STAMP)
	bash scripts/demo.sh

# The quick suite: every test not marked slow (the slow ones: training runs, sweeps, the wheel, the fuzzing
# budget; pyproject.toml's `slow` marker).
test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

# Everything, in two steps: the quick suite, then the slow tests.
test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"
	$(BIN)/python -m pytest -q -m slow

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python benchmarks/compile_speed.py

# Coverage-guided fuzzing (atheris) of the front end and the code generator, with FUZZ_TARGET=data of
# the image, idx, npz, .mat, weights and sweep.json readers, with FUZZ_TARGET=names of `name:`; findings go to fuzz/crashes/ (docs/reliability.md).
# FUZZ_SECONDS=3600 make fuzz for a longer run.
FUZZ_SECONDS ?= 600
FUZZ_TARGET ?= specs
fuzz: $(STAMP)
	$(BIN)/python -m fuzz.run --target $(FUZZ_TARGET) --seconds $(FUZZ_SECONDS)

clean-venv:
	rm -rf $(VENV)
