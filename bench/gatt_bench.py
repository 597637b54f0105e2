"""GATT decode speed per characteristic, and the process's memory.

Run: ``.venv/bin/python bench/gatt_bench.py [--seconds 0.3]``. For each characteristic it times
the pure parser alone and the full ``decode`` path (hex → parser → Part B dict → JSON text, what
``rpmflow-gateway decode`` does per line), on a representative full-length payload, and prints
µs/call and calls/s. Then it prints the current and peak RSS. Figures compare within one run on
one machine; they are not asserts.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.decode_cli import DECODERS, decode_payload

# Representative payloads: every optional field present where the layout has any.
PAYLOADS: dict[str, str] = {
    "2A35": "1fa0f06bf07df0e807030f0e1e2d4800010500",
    "2A36": "05a0f0ff07ff074800",
    "2A49": "3f00",
    "2A18": "1f0a00e807030f0e1e2d050037c0110100",
    "2A34": "ff0a0000034bd0011108074b0502c041f0",
    "2A51": "ff07",
    "2A52": "0104010a001400",
    "2A08": "e807030f0e1e2d",
    "2A2B": "e807030f0e1e2d05800f",
    "SFLOAT": "bdf0",
    "FLOAT32": "87d612fe",
}


def per_call_seconds(fn: Callable[[], object], budget_s: float) -> tuple[float, int]:
    """Seconds per call of ``fn`` over about ``budget_s`` seconds (best of three rounds)."""
    calls = 1
    while True:  # grow the batch until one batch takes ~1/10 of the budget
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= budget_s / 10 or calls >= 10_000_000:
            break
        calls *= 2
    best = elapsed / calls
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - start) / calls)
    return best, calls


def decode_line(characteristic: str, payload: str) -> str:
    """One line of ``rpmflow-gateway decode``: hex in, JSON text out."""
    return json.dumps(decode_payload(characteristic, payload)[0], ensure_ascii=False, allow_nan=False)


def rss_kb() -> tuple[int, int]:
    """(current RSS, peak RSS) in KiB from /proc/self/status (Linux)."""
    fields: dict[str, int] = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(rest.split()[0])
    return fields.get("VmRSS", 0), fields.get("VmHWM", 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=0.3, help="time budget per measurement")
    args = parser.parse_args(argv)

    header = (
        f"{'char':<8} {'bytes':>5} {'parse µs':>9} {'parse calls/s':>14}"
        f" {'decode µs':>10} {'decode calls/s':>15}"
    )
    print(header)
    print("-" * len(header))
    for characteristic, payload in PAYLOADS.items():
        data = bytes.fromhex(payload)
        parse = DECODERS[characteristic]
        obj, ok = decode_payload(characteristic, payload)
        if not ok or "warnings" in obj:
            raise SystemExit(f"bench payload for {characteristic} does not decode cleanly: {obj}")
        parse_s, _ = per_call_seconds(partial(parse, data), args.seconds)
        decode_s, _ = per_call_seconds(partial(decode_line, characteristic, payload), args.seconds)
        print(
            f"{characteristic if characteristic.startswith('2A') else characteristic.lower():<8} "
            f"{len(data):>5} {parse_s * 1e6:>9.2f} {1 / parse_s:>14,.0f} "
            f"{decode_s * 1e6:>10.2f} {1 / decode_s:>15,.0f}"
        )
    current, peak = rss_kb()
    print()
    print(f"RSS now {current / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB (python {sys.version.split()[0]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
