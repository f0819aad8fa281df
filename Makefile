# The README's commands. `make test` is what CI runs (.ci/run).
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8899
# Jupyter refuses to run as root without this flag (containers, CI machines, Binder-like hosts).
ROOT_FLAG := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)

.PHONY: setup demo demo-redis voila test lint typecheck unit e2e notebooks images bench js clean

setup:
	bash scripts/bootstrap.sh

js:
	cd js && npm run build

## The live demo dashboard in JupyterLab (simulator running).
demo: setup
	$(VENV)/bin/jupyter lab notebooks/01_quickstart.ipynb --port=$(PORT) $(ROOT_FLAG)

## Agents in three other processes publishing through a local redis-server (docs/redis.md).
demo-redis: setup
	$(PY) scripts/demo_redis.py

## The dashboard as a standalone app (voila.json leaves out the cells tagged notebook-only).
voila: setup
	$(VENV)/bin/voila notebooks/01_quickstart.ipynb --port=$(PORT)

lint:
	$(VENV)/bin/ruff check codeur_widgets tests benchmarks scripts notebooks/build_notebooks.py
	$(VENV)/bin/ruff format --check codeur_widgets tests benchmarks scripts notebooks/build_notebooks.py

typecheck:
	$(VENV)/bin/mypy

## Everything: set-up, lint, types, JS unit tests, Python tests (unit, widgets, notebooks, e2e, integration).
test: setup lint typecheck
	cd js && npm test --silent
	$(PY) scripts/run_tests.py

e2e: setup
	$(PY) -m pytest tests/e2e -q

## The README's pictures (docs/images/*.png), taken by the browser tests (Lab light and dark, Voila).
images: setup
	CODEUR_IMAGES=$(CURDIR)/docs/images $(PY) -m pytest -q -p no:cacheprovider \
		tests/e2e/test_dashboard_lab.py::test_screenshots_in_light_and_dark_theme \
		tests/e2e/test_dashboard_voila.py

## Regenerate the notebooks (committed without outputs) from their script.
notebooks: setup
	$(PY) notebooks/build_notebooks.py

unit: setup
	$(PY) -m pytest tests/core tests/widgets -q

## Benchmarks and budgets (exit 1 if one is broken); e.g. make bench BENCH_ARGS="--quick --only comm".
bench: setup
	$(PY) -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) js/node_modules codeur_widgets/static/*.js artifacts
