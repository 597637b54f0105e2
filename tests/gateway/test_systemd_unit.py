"""Issue 14: the shipped unit scores below 3.0 in `systemd-analyze security` and keeps Bluetooth."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import gateway

UNIT = Path(gateway.__file__).resolve().parent / "systemd" / "rpmflow-gateway.service"


def _settings() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_exposure_score_is_below_3() -> None:
    proc = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", str(UNIT)],
                          capture_output=True, text=True, timeout=60, check=False)
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", proc.stdout + proc.stderr)
    assert m, proc.stdout + proc.stderr
    assert float(m.group(1)) < 3.0


def test_bluetooth_still_reachable_through_bluez() -> None:
    s = _settings()
    assert s["SupplementaryGroups"] == ["bluetooth"]  # BlueZ's D-Bus policy admits this group
    families = s["RestrictAddressFamilies"][0].split()
    assert "AF_UNIX" in families and "AF_INET" in families  # D-Bus system socket, MQTT
    assert "PrivateNetwork" not in s and "IPAddressDeny" not in s
    assert s["UMask"] == ["0077"] and s["StateDirectoryMode"] == ["0700"]
