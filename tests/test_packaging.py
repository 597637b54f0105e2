"""Every component has its console script, each answers --help, and settings come from one prefix."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ["rpmflow-gateway", "rpmflow-ingest", "rpmflow-triage", "rpmflow-dashboard", "rpmflow-sim"]


def test_pyproject_declares_one_script_per_component_and_the_extras() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert sorted(meta["scripts"]) == sorted(SCRIPTS)
    extras = meta["optional-dependencies"]
    gateway_deps = " ".join(extras["gateway"]).lower()
    assert "bleak" in gateway_deps and "paho-mqtt" in gateway_deps
    assert "pandas" not in gateway_deps and "psycopg" not in gateway_deps
    server = " ".join(extras["server"]).lower()
    for needed in ("psycopg", "pandas", "apscheduler", "fastapi"):
        assert needed in server


@pytest.mark.parametrize("script", SCRIPTS)
def test_console_script_help(script: str) -> None:
    exe = Path(sys.executable).parent / script
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert "usage:" in out.stdout.lower()


def test_ci_runs_the_readme_test_command() -> None:
    ci = [ln.strip() for ln in (ROOT / ".ci" / "run").read_text().splitlines()]
    commands = [ln for ln in ci if ln and not ln.startswith(("#", "set ", "cd "))]
    # the README's test command first, then the TimescaleDB leg (which the README also names)
    assert commands == ["make test", "make test-timescale-ci"]
    readme = (ROOT / "README.md").read_text()
    assert "make test " in readme and "make test-timescale-ci" in readme
