# The two commands a new user types: `make run` and `make test`.
PY        ?= python3
VENV      := .venv
BIN       := $(VENV)/bin
PIP       := $(BIN)/python -m pip
CONSTRAIN := -c constraints.txt
STAMP     := $(VENV)/.installed
DEVSTAMP  := $(VENV)/.installed-dev

.PHONY: run test lint bench demo clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) install -q $(CONSTRAIN) torch==2.13.0
	$(PIP) install -q $(CONSTRAIN) -e .
	touch $@

$(DEVSTAMP): $(STAMP)
	$(PIP) install -q $(CONSTRAIN) -e ".[dev]"
	touch $@

run: $(STAMP)
	$(BIN)/python -m app.launch

test: $(DEVSTAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: $(DEVSTAMP)
	$(BIN)/ruff check .

demo: $(STAMP)
	$(BIN)/fhn demo

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run_all

clean:
	rm -rf $(VENV) .pytest_cache
