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
