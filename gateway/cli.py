"""``rpmflow-gateway``: ``run`` the gateway (settings from env, flags override) or ``decode`` bytes."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gateway import backends
from gateway.decode_cli import add_decode_arguments, run_decode
from gateway.errors import SettingsError
from gateway.runtime.fatal import exit_on_fatal
from gateway.settings import Settings

# flag → Settings field
_RUN_FLAGS: dict[str, str] = {
    "gateway_id": "gateway_id",
    "mqtt_url": "mqtt_url",
    "outbox": "outbox_path",
    "backend": "backend",
    "scan_interval": "scan_interval_s",
    "server_acks": "server_acks",
    "confirm_timeout": "confirm_timeout_s",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rpmflow-gateway",
        description="rpmflow BLE gateway: collect BP cuff and glucose meter readings, publish over MQTT.",
    )
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the gateway (settings from RPMFLOW_GATEWAY_* env, flags override)",
                         description="Run the gateway. Every flag overrides its RPMFLOW_GATEWAY_* variable.")
    run.add_argument("--gateway-id", help="gateway id = MQTT username (RPMFLOW_GATEWAY_ID)")
    run.add_argument("--mqtt-url", help="mqtt[s]://user:pw@host:port (..._MQTT_URL or RPMFLOW_MQTT_URL)")
    run.add_argument("--outbox", type=Path, help="SQLite outbox file (RPMFLOW_GATEWAY_OUTBOX)")
    run.add_argument("--backend", help="BLE backend: bleak (the real radio, default) or an installed plug-in "
                                        "such as sim, the simulators, configured by RPMFLOW_GATEWAY_SIM_* "
                                        "(RPMFLOW_GATEWAY_BACKEND)")
    run.add_argument("--scan-interval", type=float, help="seconds between scans (..._SCAN_INTERVAL_S)")
    run.add_argument("--server-acks", action=argparse.BooleanOptionalAction, default=None,
                     help="delete readings on ingest's ack, not the broker's PUBACK (..._SERVER_ACKS)")
    run.add_argument("--confirm-timeout", type=float,
                     help="seconds to wait for ingest's ack before re-sending (..._CONFIRM_TIMEOUT_S)")

    decode = sub.add_parser("decode", help="decode GATT characteristic payloads to JSON (DOMAIN Part B)",
                            description="Decode hex payloads of a GATT characteristic, one JSON object each.")
    add_decode_arguments(decode)
    return parser


def settings_from(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    """Env first; then every flag given on the command line replaces its field."""
    overrides: dict[str, Any] = {
        field: getattr(args, flag) for flag, field in _RUN_FLAGS.items() if getattr(args, flag) is not None
    }
    env = dict(environ)
    # Required keys may come from flags alone.
    if "gateway_id" in overrides:
        env.setdefault("RPMFLOW_GATEWAY_ID", overrides["gateway_id"])
    if "mqtt_url" in overrides:
        env.setdefault("RPMFLOW_GATEWAY_MQTT_URL", overrides["mqtt_url"])
    settings = dataclasses.replace(Settings.from_env(env), **overrides)
    settings.validate()
    return settings


def main(argv: Sequence[str] | None = None) -> int:
    return exit_on_fatal("rpmflow-gateway", lambda: _main(argv))


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "decode":
        return run_decode(args)
    try:
        settings = settings_from(args, os.environ)
        radio = backends.make_radio(settings.backend, os.environ, settings.zone)
    except SettingsError as exc:
        print(f"rpmflow-gateway: configuration error: {exc}", file=sys.stderr)
        return 2
    from gateway.runtime.fatal import exit_on_fatal
    from gateway.service import run

    return exit_on_fatal("rpmflow-gateway", lambda: run(settings, radio))


if __name__ == "__main__":
    raise SystemExit(main())
