"""``rpmflow-gateway``: ``run`` the gateway (settings from env, flags override) or ``decode`` bytes."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping, Sequence

from gateway import backends
from gateway.decode_cli import add_decode_arguments, run_decode
from gateway.runtime import settings as rs
from gateway.runtime.fatal import exit_on_fatal
from gateway.settings import Settings

_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rpmflow-gateway",
        description="rpmflow BLE gateway: collect BP cuff and glucose meter readings, publish over MQTT.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the gateway (settings from RPMFLOW_GATEWAY_* env, flags override)",
                         description="Run the gateway. Every flag overrides its RPMFLOW_GATEWAY_* variable.")
    rs.add_flags(run, Settings)

    decode = sub.add_parser("decode", help="decode GATT characteristic payloads to JSON (DOMAIN Part B)",
                            description="Decode hex payloads of a GATT characteristic, one JSON object each.")
    add_decode_arguments(decode)
    return parser


def settings_from(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    """Env first; then every flag given on the command line replaces its field."""
    return rs.load(Settings, environ, args)


def main(argv: Sequence[str] | None = None) -> int:
    return exit_on_fatal("rpmflow-gateway", lambda: _main(argv))


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "decode":
        logging.basicConfig(level="INFO", stream=sys.stderr, format=_LOG_FORMAT)
        return run_decode(args)
    settings = settings_from(args, os.environ)
    logging.basicConfig(level=settings.log_level, stream=sys.stderr, format=_LOG_FORMAT)
    radio = backends.make_radio(settings.backend, os.environ, settings.zone)  # SettingsError: one line
    from gateway.service import run

    return run(settings, radio)


if __name__ == "__main__":
    raise SystemExit(main())
