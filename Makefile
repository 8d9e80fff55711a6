# Two commands do all the set-up on a fresh clone:
#   make demo   # creates .venv if missing, then compiles, draws and briefly trains a network
#   make test   # creates .venv if missing, then runs the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench fuzz clean-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	@command -v dot >/dev/null || echo "note: Graphviz's dot is missing; 'apt-get install graphviz' for svg/png/pdf diagrams"
	touch $(STAMP)

demo: $(STAMP)
	bash scripts/demo.sh

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python benchmarks/compile_speed.py

# Coverage-guided fuzzing (atheris) of the front end and the code generator, or with FUZZ_TARGET=data of
# the image, idx, npz and weights readers; findings go to fuzz/crashes/ (docs/reliability.md).
# FUZZ_SECONDS=3600 make fuzz for a longer run.
FUZZ_SECONDS ?= 600
FUZZ_TARGET ?= specs
fuzz: $(STAMP)
	$(BIN)/python -m fuzz.run --target $(FUZZ_TARGET) --seconds $(FUZZ_SECONDS)

clean-venv:
	rm -rf $(VENV)
