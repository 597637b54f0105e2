"""The fleet load generator's command line (``rpmflow-sim fleet`` or ``python -m simulators.fleet_cli``).

Flags::

    --broker mqtt://host:port --credentials creds.json   # an existing broker, {gateway_id: password}
    --embedded                                          # start a throwaway stack and provision gateways
    --gateways N --devices-per-gateway N --rate MSG_S (0 = as fast as possible)
    --count N | --duration S --window N --backfill-days D --per-day N --glucose-share F
    --vitals-share F (scales and pulse oximeters)
    --seed N --ids-out FILE (one published message id per line) --prefix sim-gw
    --confirm-timeout S (as a real gateway: resend until ingest's end-to-end ack; simulators/fleet_acks.py)
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from urllib.parse import unquote, urlsplit

from simulators.fleet import FleetConfig, provision, run_fleet

log = logging.getLogger("simulators.fleet")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rpmflow-sim fleet", description=__doc__.split("\n\n")[0])
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--broker", help="mqtt://host:port of an existing broker (needs --credentials)")
    where.add_argument("--embedded", action="store_true", help="start a throwaway stack and provision it")
    p.add_argument("--credentials", type=Path, help="JSON file {gateway_id: password}")
    p.add_argument("--gateways", type=int, default=10)
    p.add_argument("--devices-per-gateway", type=int, default=5)
    p.add_argument("--rate", type=float, default=1000.0, help="messages/s for the fleet, 0 = max")
    p.add_argument("--count", type=int, default=10_000, help="readings to publish (live mode)")
    p.add_argument("--duration", type=float, help="stop publishing after this many seconds")
    p.add_argument("--window", type=int, default=500, help="un-acked publishes per gateway (<= 65000)")
    p.add_argument("--backfill-days", type=int, default=0, help="backfill mode: N days of history")
    p.add_argument("--per-day", type=int, default=2, help="backfill: readings per device per day")
    p.add_argument("--glucose-share", type=float, default=0.3)
    p.add_argument("--vitals-share", type=float, default=0.0,
                   help="share of devices that are scales or pulse oximeters (half each)")
    p.add_argument("--seed", type=int)
    p.add_argument("--prefix", default="sim-gw", help="gateway id prefix")
    p.add_argument("--ids-out", type=Path, help="write the published message ids here, one per line")
    p.add_argument("--confirm-timeout", type=float, default=0.0,
                   help="> 0: as a real gateway, resend readings ingest has not acknowledged end to end "
                        "after this many seconds, and finish only when all are confirmed")
    return p


def fleet_main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not 1 <= args.window <= 65000:
        print("--window must be 1..65000 (paho misbehaves past ~65k queued publishes)")
        return 2
    config = FleetConfig(
        gateways=args.gateways, devices_per_gateway=args.devices_per_gateway, rate=args.rate,
        count=None if args.duration and args.count == 10_000 else args.count, duration_s=args.duration,
        window=args.window, backfill_days=args.backfill_days, per_day=args.per_day,
        glucose_share=args.glucose_share, vitals_share=args.vitals_share, seed=args.seed, prefix=args.prefix,
        keep_ids=args.ids_out is not None, confirm=args.confirm_timeout > 0,
        confirm_timeout_s=args.confirm_timeout or 10.0,
    )
    if args.embedded:
        from simulators.stack import running_stack

        with running_stack() as stack:
            creds = provision(stack.mosquitto, config)
            report = run_fleet(f"mqtt://127.0.0.1:{stack.mosquitto.port}", creds, config)
    else:
        if args.credentials is None:
            print("--broker needs --credentials FILE ({gateway_id: password})")
            return 2
        creds = {str(k): str(v) for k, v in json.loads(args.credentials.read_text()).items()}
        broker = urlsplit(args.broker)
        url = f"mqtt://{broker.hostname}:{broker.port or 1883}"
        if broker.username:  # credentials in the URL belong to no gateway: ignore, but say so
            log.info("ignoring user %s in --broker: each gateway uses its own account",
                     unquote(broker.username))
        report = run_fleet(url, creds, config)
    if args.ids_out:
        args.ids_out.write_text("".join(f"{m}\n" for m in report.message_ids))
    print(report.table())
    if config.confirm:
        return 0 if report.confirmed == report.published else 1
    return 0 if report.acked == report.published else 1


if __name__ == "__main__":
    raise SystemExit(fleet_main())
