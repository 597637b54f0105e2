# The two commands of the README, plus helpers. Every target sets itself up first.
.PHONY: setup demo test lint bench chaos clean

VENV := .venv/bin

setup:
	bash scripts/setup.sh

demo: setup
	$(VENV)/rpmflow-sim demo

lint:
	$(VENV)/ruff check .
	$(VENV)/mypy
	$(VENV)/lint-imports

test:
	RPMFLOW_SETUP_BROWSER=1 bash scripts/setup.sh
	$(VENV)/ruff check .
	$(VENV)/mypy
	$(VENV)/lint-imports
	$(VENV)/python -m pytest -q

bench: setup
	$(VENV)/python bench/gatt_bench.py
	$(VENV)/python bench/gateway_bench.py
	$(VENV)/python bench/ingest_bench.py --quick
	$(VENV)/python bench/triage_bench.py
	$(VENV)/python bench/triage_quality.py
	$(VENV)/python bench/dashboard_bench.py

chaos: setup
	$(VENV)/python bench/chaos_run.py --seed 1

clean:
	rm -rf .state test-artifacts .pytest_cache .mypy_cache .ruff_cache
