"""The gateway runs on a Raspberry Pi: importing it must not pull in the server-side stack."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HEAVY = ("pandas", "psycopg", "numpy", "fastapi", "apscheduler", "bleak", "simulators")


def test_gateway_service_and_cli_import_light() -> None:
    code = (
        "import sys, json; import gateway.service, gateway.cli; "
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {list(HEAVY)!r})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert json.loads(out.stdout) == []  # bleak and the simulators load only when a backend needs them


def test_rpmflow_gateway_run_with_the_real_radio_loads_no_simulator_or_server_code() -> None:
    """What the Pi runs (the ``rpmflow-gateway`` wheel): the CLI builds settings and the bleak radio, the
    service its outbox publisher; neither the simulators nor another component is imported."""
    code = (
        "import sys, json\n"
        "from zoneinfo import ZoneInfo\n"
        "from gateway import backends\n"
        "from gateway.cli import build_parser, settings_from\n"
        "from gateway.service import GatewayService\n"
        "env = {'RPMFLOW_GATEWAY_ID': 'gw-1', 'RPMFLOW_MQTT_URL': 'mqtt://gw-1:pw@127.0.0.1:1'}\n"
        "settings = settings_from(build_parser().parse_args(['run']), env)\n"
        "radio = backends.make_radio(settings.backend, env, settings.zone)\n"
        "GatewayService(settings, radio=radio)\n"
        "print(json.dumps([type(radio).__name__, sorted({m.split('.')[0] for m in sys.modules})]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    radio, modules = json.loads(out.stdout)
    loaded = set(modules)
    assert radio == "BleakRadio" and "gateway" in loaded  # the real radio was built
    assert not loaded & {"simulators", "ingest", "triage", "dashboards", "pandas", "psycopg", "numpy"}
