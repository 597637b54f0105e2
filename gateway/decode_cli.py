"""``rpmflow-gateway decode``: decode GATT payloads to DOMAIN.md Part B JSON, one object per line.

``--characteristic`` takes ``2A35 2A36 2A49 2A18 2A34 2A51 2A52 2A08 2A2B``, weight scale
``2A9D 2A9E``, pulse oximeter ``2A5E 2A5F 2A60``, ``sfloat`` and ``float32`` (case-insensitive,
``0x`` prefix allowed).  Payloads come from ``--hex`` (repeatable) or, without it, one per line on
stdin: every input line gets exactly one output line, so a blank line between
payloads is an empty payload and prints an error (callers pair outputs with inputs by position);
blank lines after the last payload (a trailing newline or two) are ignored.  Hex may contain spaces,
``:`` or ``-`` and a leading ``0x``.  A payload that cannot be decoded prints
``{"error": "<reason>"}`` on its line and the exit status is 1 once every payload has been processed
(0 when all decoded; warnings do not count as errors).  RACP (2A52) frames decode in either direction.

The gateway CLI either calls :func:`decode_main` with the arguments after ``decode``, or registers
:func:`add_decode_arguments` on its own sub-parser and calls :func:`run_decode` with the namespace.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Iterable
from typing import TextIO

from gateway.errors import GatewayError
from gateway.gatt import (
    parse_blood_pressure_feature,
    parse_blood_pressure_measurement,
    parse_current_time,
    parse_date_time,
    parse_float32_bytes,
    parse_glucose_context,
    parse_glucose_feature,
    parse_glucose_measurement,
    parse_intermediate_cuff_pressure,
    parse_plx_continuous_measurement,
    parse_plx_features,
    parse_plx_spot_check_measurement,
    parse_racp,
    parse_sfloat_bytes,
    parse_weight_measurement,
    parse_weight_scale_feature,
)
from gateway.gatt.jsonable import to_json_dict

__all__ = ["DECODERS", "add_decode_arguments", "decode_main", "decode_payload", "parse_hex", "run_decode"]

logger = logging.getLogger(__name__)

DECODERS: dict[str, Callable[[bytes], object]] = {
    "2A35": parse_blood_pressure_measurement,
    "2A36": parse_intermediate_cuff_pressure,
    "2A49": parse_blood_pressure_feature,
    "2A18": parse_glucose_measurement,
    "2A34": parse_glucose_context,
    "2A51": parse_glucose_feature,
    "2A52": parse_racp,
    "2A08": parse_date_time,
    "2A2B": parse_current_time,
    "2A9D": parse_weight_measurement,
    "2A9E": parse_weight_scale_feature,
    "2A5E": parse_plx_spot_check_measurement,
    "2A5F": parse_plx_continuous_measurement,
    "2A60": parse_plx_features,
    "SFLOAT": parse_sfloat_bytes,
    "FLOAT32": parse_float32_bytes,
}


def characteristic_name(text: str) -> str:
    """Normalise ``0x2a35`` / ``2a35`` / ``SFloat`` to a :data:`DECODERS` key (argparse ``type``)."""
    key = text.strip().upper()
    if key.startswith("0X"):
        key = key[2:]
    if key not in DECODERS:
        choices = " ".join(k if k.startswith("2A") else k.lower() for k in DECODERS)
        raise argparse.ArgumentTypeError(f"unknown characteristic {text!r}; choose from {choices}")
    return key


def parse_hex(text: str) -> bytes:
    """Hex with optional ``0x`` and separators (space, ``:``, ``-``) → bytes; ``ValueError`` if invalid."""
    cleaned = text.strip()
    if cleaned[:2].lower() == "0x":
        cleaned = cleaned[2:]
    cleaned = "".join(ch for ch in cleaned if ch not in " \t:-_,")
    if len(cleaned) % 2:
        raise ValueError(f"invalid hex {text.strip()!r}: odd number of digits")
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise ValueError(f"invalid hex {text.strip()!r}") from None


def decode_payload(characteristic: str, text: str) -> tuple[dict[str, object], bool]:
    """One payload → (JSON object, ok).  Never raises for bad input."""
    try:
        data = parse_hex(text)
    except ValueError as exc:
        return {"error": str(exc)}, False
    try:
        return to_json_dict(DECODERS[characteristic](data)), True
    except GatewayError as exc:
        return {"error": str(exc)}, False
    except Exception as exc:  # a decoder bug must not stop the other lines; it is still reported
        logger.exception("decoder crashed on %s payload %s", characteristic, data.hex())
        return {"error": f"internal error: {type(exc).__name__}: {exc}"}, False


def add_decode_arguments(parser: argparse.ArgumentParser) -> None:
    """Register ``--characteristic`` and ``--hex`` on ``parser`` (a sub-parser of the gateway CLI)."""
    parser.add_argument(
        "--characteristic",
        "-c",
        required=True,
        type=characteristic_name,
        help="UUID16 (2A35 2A36 2A49 2A18 2A34 2A51 2A52 2A08 2A2B 2A9D 2A9E 2A5E 2A5F 2A60), sfloat",
    )
    parser.add_argument(
        "--hex",
        action="append",
        dest="hex",
        metavar="PAYLOAD",
        help="payload as hex (repeatable); without it, read one payload per line from stdin",
    )


def _payloads(args: argparse.Namespace, stdin: TextIO) -> Iterable[str]:
    if args.hex:
        yield from args.hex
        return
    pending_blank = 0  # blank lines are held back: trailing ones at end of input are ignored
    for line in stdin:
        text = line.rstrip("\r\n")
        if not text.strip():
            pending_blank += 1
            continue
        yield from [""] * pending_blank
        pending_blank = 0
        yield text


def run_decode(args: argparse.Namespace, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    """Decode every payload named by ``args``; 0 when all decoded, 1 when any printed an error."""
    stdin = sys.stdin if stdin is None else stdin
    stdout = sys.stdout if stdout is None else stdout
    status = 0
    for text in _payloads(args, stdin):
        obj, ok = decode_payload(args.characteristic, text)
        stdout.write(json.dumps(obj, ensure_ascii=False, allow_nan=False) + "\n")
        if not ok:
            status = 1
    stdout.flush()
    return status


def decode_main(
    argv: list[str] | None = None, stdin: TextIO | None = None, stdout: TextIO | None = None
) -> int:
    """Entry point for ``rpmflow-gateway decode``; ``argv`` are the arguments after ``decode``."""
    parser = argparse.ArgumentParser(prog="rpmflow-gateway decode", description=__doc__.split("\n\n")[0])
    add_decode_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on bad usage; callers get a status code instead
        return exc.code if isinstance(exc.code, int) else 2
    return run_decode(args, stdin, stdout)


if __name__ == "__main__":
    raise SystemExit(decode_main())
