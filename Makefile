# The README's commands. `make test` is what CI runs (.ci/run).
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8899

.PHONY: setup demo voila test lint typecheck unit e2e bench js clean

setup:
	bash scripts/bootstrap.sh

js:
	cd js && npm run build

## The live demo dashboard in JupyterLab (simulator running).
demo: setup
	$(VENV)/bin/jupyter lab notebooks/01_quickstart.ipynb --port=$(PORT)

## The dashboard as a standalone app.
voila: setup
	$(VENV)/bin/voila notebooks/01_quickstart.ipynb --port=$(PORT)

lint:
	$(VENV)/bin/ruff check codeur_widgets tests benchmarks
	$(VENV)/bin/ruff format --check codeur_widgets tests benchmarks

typecheck:
	$(VENV)/bin/mypy

## Everything: set-up, lint, types, JS unit tests, Python tests (unit, widgets, notebooks, e2e, integration).
test: setup lint typecheck
	cd js && npm test --silent
	$(PY) -m pytest tests --nbval-lax notebooks -p no:cacheprovider

unit: setup
	$(PY) -m pytest tests/core tests/widgets -q

bench: setup
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) js/node_modules codeur_widgets/static/*.js artifacts
