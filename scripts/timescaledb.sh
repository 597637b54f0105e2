#!/usr/bin/env bash
# TimescaleDB for the test leg and the storage benchmark: builds ../shared/timescaledb once (cached
# under /var/tmp, never into system directories) and prints its PostgreSQL bin directory last.
# The build needs PostgreSQL's server headers (postgresql-server-dev-15), installed here when root.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${RPMFLOW_TIMESCALEDB_BUILD:-}
if [ -z "$build" ]; then
  for c in ../shared/timescaledb/build.sh ../../shared/timescaledb/build.sh; do
    if [ -f "$c" ]; then build=$c; break; fi
  done
fi
if [ -z "$build" ]; then
  echo "timescaledb: ../shared/timescaledb/build.sh not found (set RPMFLOW_TIMESCALEDB_BUILD)" >&2
  exit 1
fi
if bin=$(bash "$build" --bin 2>/dev/null); then echo "$bin"; exit 0; fi
if [ ! -f /usr/include/postgresql/15/server/postgres.h ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "timescaledb: PostgreSQL server headers missing; as root: apt-get install -y postgresql-server-dev-15" >&2
    exit 1
  fi
  echo "timescaledb: installing postgresql-server-dev-15" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-server-dev-15 >&2
fi
bash "$build" | tail -n 1
