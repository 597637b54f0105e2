#!/usr/bin/env bash
# Builds the Raspberry Pi's distribution, rpmflow-gateway, from this tree:
#   dist/rpmflow_gateway-<version>-py3-none-any.whl
# holding the gateway package only (with its systemd unit), the `rpmflow-gateway` console script,
# and dependencies bleak + paho-mqtt only. Why a second distribution: `pip install rpmflow[gateway]`
# puts every package on the Pi (simulators, ingest, triage, dashboards), though the gateway never
# imports them. Version, dependencies and the script's target are read from pyproject.toml (the one
# source); the main distribution stays as it is. Runs on any machine with the repo and Python >= 3.11.
#
#   scripts/build_gateway_wheel.sh            # writes dist/rpmflow_gateway-<version>-py3-none-any.whl
#   scripts/build_gateway_wheel.sh OUT_DIR    # writes it into OUT_DIR
#
# Environment: PYTHON (default .venv/bin/python when present, else python3). Builds offline with
# that interpreter's setuptools (>= 61) and wheel when it has both, else pip fetches them to build with.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "${1:-$root/dist}" && cd "${1:-$root/dist}" && pwd)
if [ -n "${PYTHON:-}" ]; then py=$PYTHON
elif [ -x "$root/.venv/bin/python" ]; then py=$root/.venv/bin/python
else py=python3
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp -r "$root/gateway" "$stage/gateway"
find "$stage/gateway" -name __pycache__ -type d -prune -exec rm -rf {} +

# The distribution's pyproject.toml, derived from the main one.
version=$("$py" - "$root/pyproject.toml" "$stage/pyproject.toml" <<'PY'
import json, sys, tomllib

main = tomllib.load(open(sys.argv[1], "rb"))["project"]
script = main["scripts"]["rpmflow-gateway"]
deps = main["optional-dependencies"]["gateway"]
q = json.dumps  # a JSON string is a valid TOML basic string
with open(sys.argv[2], "w") as f:
    f.write(f"""[build-system]
requires = ["setuptools>=61", "wheel"]
build-backend = "setuptools.build_meta"

[project]
name = "rpmflow-gateway"
version = {q(main["version"])}
description = "rpmflow's BLE gateway for a Raspberry Pi: BP cuffs, glucose meters, scales, oximeters -> MQTT."
requires-python = {q(main["requires-python"])}
dependencies = [{", ".join(q(d) for d in deps)}]

[project.scripts]
rpmflow-gateway = {q(script)}

[tool.setuptools.packages.find]
include = ["gateway*"]

[tool.setuptools.package-data]
gateway = ["systemd/*.service"]
""")
print(main["version"])
PY
)

isolation=()
if "$py" -c 'import setuptools, wheel, sys; sys.exit(int(setuptools.__version__.split(".")[0]) < 61)' 2>/dev/null
then
  isolation=(--no-build-isolation)
fi
(cd "$stage" && "$py" -m pip wheel -q --no-deps "${isolation[@]}" --wheel-dir "$out" .)
echo "$out/rpmflow_gateway-$version-py3-none-any.whl"
