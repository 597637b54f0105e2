#!/usr/bin/env bash
# Manual check on a Raspberry Pi with a real cuff or meter (never run by CI; docs/gateway.md,
# "Manual check on a Pi with a real device"). Read-only for the device's memory apart from the clock:
# it scans, then runs ONE collection session into a throw-away outbox and prints what it decoded.
#
#   scripts/pi-check.sh                      # steps 1-3: the host's Bluetooth stack and a scan
#   scripts/pi-check.sh C8:4F:86:00:01:23    # steps 1-4: and one session with that device
#
# Environment: PYTHON (default /opt/rpmflow/venv/bin/python), SCAN_S (default 10), TZ_NAME (default UTC).
set -euo pipefail
PYTHON=${PYTHON:-/opt/rpmflow/venv/bin/python}
SCAN_S=${SCAN_S:-10}
TZ_NAME=${TZ_NAME:-UTC}
ADDRESS=${1:-}

fail() { echo "pi-check: FAIL: $*" >&2; exit 1; }
ok() { echo "pi-check: ok: $*"; }

echo "== 1. BlueZ and the adapter"
command -v bluetoothctl >/dev/null || fail "bluetoothctl missing: sudo apt-get install bluez"
systemctl is-active --quiet bluetooth || fail "bluetoothd not running: sudo systemctl enable --now bluetooth"
bluetoothctl --version
if rfkill list bluetooth 2>/dev/null | grep -q "blocked: yes"; then
    fail "Bluetooth is rfkill-blocked: sudo rfkill unblock bluetooth"
fi
bluetoothctl show | grep -q "Powered: yes" || fail "adapter off: bluetoothctl power on"
ok "bluetoothd active, adapter powered"

echo "== 2. Permission"
if [ "$(id -u)" -ne 0 ] && ! id -nG | grep -qw bluetooth; then
    fail "$(id -un) is not in the bluetooth group: sudo usermod -aG bluetooth $(id -un) (then log in again)"
fi
ok "$(id -un) may talk to BlueZ"

echo "== 3. Scan ${SCAN_S} s for blood pressure (0x1810) and glucose (0x1808) devices"
"$PYTHON" - "$SCAN_S" <<'PY'
import asyncio, sys
from gateway.ble_link import SERVICE_BLOOD_PRESSURE, SERVICE_GLUCOSE, BleakRadio

found = asyncio.run(BleakRadio().scan([SERVICE_BLOOD_PRESSURE, SERVICE_GLUCOSE], float(sys.argv[1])))
for a in found:
    print(f"  {a.address}  {a.name or '?':24}  services {[hex(u) for u in a.service_uuids]}  rssi {a.rssi}")
print(f"pi-check: ok: {len(found)} device(s) advertising" if found else
      "pi-check: nothing advertising: take a measurement (cuffs advertise only after one) and run again")
PY
[ -n "$ADDRESS" ] || exit 0

echo "== 4. One collection session with $ADDRESS (take a measurement first)"
"$PYTHON" - "$ADDRESS" "$SCAN_S" "$TZ_NAME" <<'PY'
import asyncio, json, sys, tempfile
from pathlib import Path
from zoneinfo import ZoneInfo
from gateway.ble_link import SERVICE_BLOOD_PRESSURE, SERVICE_GLUCOSE, BleakRadio
from gateway.collector import Collector, CollectorConfig
from gateway.errors import GatewayError
from gateway.outbox import Outbox

address, scan_s, zone = sys.argv[1], float(sys.argv[2]), ZoneInfo(sys.argv[3])

async def main(ob: Outbox) -> None:
    radio = BleakRadio()
    await radio.scan([SERVICE_BLOOD_PRESSURE, SERVICE_GLUCOSE], scan_s)
    print(await Collector(radio, ob, CollectorConfig("pi-check", zone)).session(address))

with tempfile.TemporaryDirectory() as tmp, Outbox(Path(tmp) / "outbox.sqlite3", 1000) as ob:
    try:
        asyncio.run(main(ob))
    except GatewayError as exc:
        sys.exit(f"pi-check: FAIL: {exc}")
    for row in ob.rows():
        print(f"  [{row.state}] {json.dumps(json.loads(row.payload).get('values'))}")
    print(f"pi-check: ok: {len(ob.rows())} reading(s) decoded; nothing was published")
PY
