# The two commands of the README, plus helpers. Every target sets itself up first.
.PHONY: setup demo test test-timescale test-timescale-ci lint bench chaos clean gateway-wheel

VENV := .venv/bin

setup:
	bash scripts/setup.sh

demo: setup
	$(VENV)/rpmflow-sim demo

# The TimescaleDB leg: the database-facing tests again, on PostgreSQL with TimescaleDB preloaded
# (built once from ../shared/timescaledb), asserting the extension's objects are really in use.
TIMESCALE_TESTS := tests/ingest tests/triage tests/dashboards tests/test_end_to_end.py
# CI's TimescaleDB leg: the storage-facing subset (schema, writer and its fast path, the 0098 upgrade
# of compressed chunks, hypertable/compression/continuous aggregate, triage and billing reads, the
# patient page, the whole pipeline, ingest killed with SIGKILL mid-stream: nothing lost or
# duplicated on a hypertable), about 3 minutes.
TIMESCALE_CI_TESTS := tests/ingest/test_timescale.py tests/ingest/test_writer.py tests/ingest/test_migrate.py \
	tests/ingest/test_lean_migration.py tests/ingest/test_compact_migration.py tests/ingest/test_codes_migration.py \
	tests/ingest/test_direct.py tests/test_end_to_end.py \
	tests/triage/test_jobs.py tests/triage/test_billing_compute.py tests/triage/test_assignments.py \
	tests/dashboards/test_pages.py \
	tests/ingest/test_faults.py::test_kill_9_mid_stream_then_restart_and_sigterm_drains

TIMESCALE_MARKERS := not browser and not slow

test-timescale: setup
	bin=$$(bash scripts/timescaledb.sh | tail -n 1) && \
	RPMFLOW_PG_BIN=$$bin RPMFLOW_EXPECT_TIMESCALE=1 \
	$(VENV)/python -m pytest -q -m '$(TIMESCALE_MARKERS)' $(TIMESCALE_TESTS)

test-timescale-ci:
	$(MAKE) test-timescale TIMESCALE_TESTS="$(TIMESCALE_CI_TESTS)" TIMESCALE_MARKERS="not browser"

# The Raspberry Pi's distribution: dist/rpmflow_gateway-<version>-py3-none-any.whl (docs/gateway.md).
gateway-wheel:
	bash scripts/build_gateway_wheel.sh

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
	-$(VENV)/python bench/ingest_bench.py --quick  # exits 1 when a target fails: the table says which
	$(VENV)/python bench/reconnect_storm.py --gateways 500
	$(VENV)/python bench/triage_bench.py
	$(VENV)/python bench/triage_quality.py
	$(VENV)/python bench/dashboard_bench.py
	$(VENV)/python bench/storage_bench.py

chaos: setup
	$(VENV)/python bench/chaos_run.py --seed 1

clean:
	rm -rf .state test-artifacts .pytest_cache .mypy_cache .ruff_cache
