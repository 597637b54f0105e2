"""Every component has its console script, each answers --help, and settings come from one prefix;
the Pi's wheel (scripts/build_gateway_wheel.sh) holds the gateway alone."""

from __future__ import annotations

import email
import os
import re
import subprocess
import sys
import tomllib
import zipfile
from importlib.metadata import version
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


# The Pi's distribution (scripts/build_gateway_wheel.sh): the gateway package and nothing else.
GATEWAY_DEPS = {"bleak", "paho-mqtt"}


@pytest.fixture(scope="module")
def gateway_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gateway-wheel")
    built = subprocess.run(["bash", str(ROOT / "scripts" / "build_gateway_wheel.sh"), str(out)],
                           capture_output=True, text=True, timeout=120, check=False,
                           env={**os.environ, "PYTHON": sys.executable})
    assert built.returncode == 0, built.stdout + built.stderr
    wheel = Path(built.stdout.strip().splitlines()[-1])
    assert [p.name for p in out.iterdir()] == [wheel.name]
    return wheel


def _dist_info(wheel: Path) -> str:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert wheel.name == f"rpmflow_gateway-{version}-py3-none-any.whl"
    return f"rpmflow_gateway-{version}.dist-info"


def test_gateway_wheel_holds_the_gateway_package_only(gateway_wheel: Path) -> None:
    dist_info = _dist_info(gateway_wheel)
    with zipfile.ZipFile(gateway_wheel) as whl:
        names = set(whl.namelist())
    packaged = {n for n in names if not n.startswith(f"{dist_info}/")}
    in_tree = {p.relative_to(ROOT).as_posix() for p in (ROOT / "gateway").rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    assert packaged == in_tree  # every gateway file (the systemd unit too), and nothing beside them
    assert "gateway/systemd/rpmflow-gateway.service" in packaged


def test_gateway_wheel_requires_only_bleak_and_paho(gateway_wheel: Path) -> None:
    dist_info = _dist_info(gateway_wheel)
    with zipfile.ZipFile(gateway_wheel) as whl:
        meta = email.message_from_bytes(whl.read(f"{dist_info}/METADATA"))
        entry_points = whl.read(f"{dist_info}/entry_points.txt").decode()
    assert meta["Name"] == "rpmflow-gateway"
    requires = meta.get_all("Requires-Dist") or []
    assert {re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].lower() for r in requires} == GATEWAY_DEPS
    # one console script and no BLE plug-in: the simulated radio stays in the main distribution
    assert [ln for ln in entry_points.splitlines() if ln.strip()] == [
        "[console_scripts]", "rpmflow-gateway = gateway.cli:main"]


def test_gateway_wheel_installs_alone_and_runs(gateway_wheel: Path, tmp_path: Path) -> None:
    """Installed as an operator does, into a fresh venv from a wheelhouse, without the index. The
    wheelhouse gets bleak and paho-mqtt (at the versions of this venv) and their dependencies by
    ``pip download``, so this test needs PyPI reachable (it is here and in CI)."""
    wheelhouse = tmp_path / "wheelhouse"
    pins = [f"{dep}=={version(dep)}" for dep in sorted(GATEWAY_DEPS)]
    got = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:",
                          "--dest", str(wheelhouse), *pins],
                         capture_output=True, text=True, timeout=120, check=False)
    assert got.returncode == 0, f"pip download {pins} (needs PyPI):\n{got.stderr}"
    venv = tmp_path / "pi"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = str(venv / "bin" / "python")
    installed = subprocess.run([py, "-m", "pip", "install", "-q", "--no-index", "--find-links",
                                str(wheelhouse), str(gateway_wheel)],
                               capture_output=True, text=True, timeout=120, check=False)
    assert installed.returncode == 0, installed.stderr

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=60, check=False,
                              cwd=tmp_path)  # not the checkout: nothing importable from the tree

    helped = run(str(venv / "bin" / "rpmflow-gateway"), "--help")
    assert helped.returncode == 0 and "usage: rpmflow-gateway" in helped.stdout, helped.stderr
    backends = run(py, "-c", "from gateway import backends; print(backends.available())")
    assert backends.stdout.strip() == "['bleak']", backends.stderr
    for absent in ("simulators", "ingest", "triage", "dashboards", "tests", "pandas", "psycopg"):
        imported = run(py, "-c", f"import {absent}")
        assert imported.returncode != 0 and "ModuleNotFoundError" in imported.stderr, absent
    software = run(py, "-c", "from gateway.mqtt_client import software_version; print(software_version())")
    assert software.stdout.strip() == f"rpmflow {gateway_wheel.name.split('-')[1]}", software.stderr
