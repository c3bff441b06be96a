# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
OUT ?= results/floor_strategies

.PHONY: run test setup setup-dev lint bench clean validate docs-validation fit

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

setup: $(VENV)/.installed
setup-dev: $(VENV)/.installed-dev

run: setup
	$(BIN)/plsim run scenarios/floor_strategies.toml --out $(OUT) --workers 0

test: setup-dev
	$(BIN)/python -m pytest -q

lint: setup-dev
	$(BIN)/ruff check .

bench: setup
	$(BIN)/plsim bench

validate: setup
	$(BIN)/plsim validate

# the validation table of docs/model.md §10, regenerated (never pasted)
docs-validation: setup
	$(BIN)/plsim validate --report-only --update-doc docs/model.md

# refit the hand-set parameters to the calibration facts (writes sim/config/fitted.toml)
fit: setup-dev
	$(BIN)/plsim calibrate --fit

clean:
	rm -rf $(VENV) results/*/ .pytest_cache
