# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
OUT ?= results/floor_strategies

.PHONY: run test setup setup-dev lint bench clean notebooks reference validate docs-validation fit

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The app's front-end assets (npm packages Solara would fetch from a CDN) go into the venv.
ASSETS = $(BIN)/python -m sim.presentation.assets || echo "plsim app: front-end assets not fetched now; plsim app fetches them at start"

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	$(ASSETS)
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(ASSETS)
	touch $@ $(VENV)/.installed

setup: $(VENV)/.installed
setup-dev: $(VENV)/.installed-dev

run: setup
	rm -rf $(OUT)  # the main job's own folder: a fresh run each time (plsim run refuses a full one)
	$(BIN)/plsim run scenarios/floor_strategies.toml --out $(OUT) --workers 0

test: setup-dev
	$(BIN)/python -m pytest -q

lint: setup-dev
	$(BIN)/ruff check .

bench: setup
	$(BIN)/plsim bench

# Execute the notebooks in full mode and render them to HTML under results/notebooks/.
notebooks: setup-dev
	$(BIN)/plsim notebooks --mode full --out results/notebooks

# Regenerate results/reference/ deliberately (then say so in the commit message).
reference: setup
	$(BIN)/plsim reference --update --workers 0

validate: setup
	$(BIN)/plsim validate

# the validation table of docs/model.md §10, regenerated (never pasted)
docs-validation: setup
	$(BIN)/plsim validate --report-only --update-doc docs/model.md

# refit the hand-set parameters to the calibration facts (writes sim/config/fitted.toml)
fit: setup-dev
	$(BIN)/plsim calibrate --fit

clean:
	rm -rf $(VENV) $(filter-out results/reference/,$(wildcard results/*/)) .pytest_cache
