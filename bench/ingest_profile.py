"""Where ingest's CPU time goes: py-spy samples the receiver and its workers draining a backlog.

py-spy (``pip install py-spy`` into the venv; not a dependency of rpmflow) records on-CPU
samples only (idle threads are not counted) of ``rpmflow-ingest run`` and its worker processes
while they drain a backlog queued for their session; the samples are then put in buckets by the
frames they contain (first match wins, in the order below) and printed as shares per process.

    .venv/bin/python bench/ingest_profile.py [--backlog 120000] [--seconds 12] [--keep DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import ingest_mqtt as mq  # noqa: E402
from bench.ingest_bench import fresh_db  # noqa: E402
from simulators.stack import running_stack  # noqa: E402

# (bucket, substrings of a frame "function (file)"): the first bucket any frame matches wins,
# checked from the innermost frame outwards.
BUCKETS: list[tuple[str, tuple[str, ...]]] = [
    ("JSON decoding", ("loads (orjson", "loads (json/", "decode (json/", "raw_decode")),
    ("message id (sha256)", ("message_id_from_contents", "message_id (gateway/contract")),
    ("validation", ("(ingest/contract", "(ingest/valid", "fromisoformat", "grade (ingest/plausibility")),
    ("row building (staging_row)", ("staging_row", "reading_fields", "raw_bytes",
                                    "_batch_json", "devices_seen")),
    ("COPY (row formatting + send)", ("write_row", "copy (psycopg", "_write (psycopg", "Copy")),
    ("SQL merge/devices/commit", ("execute (psycopg", "commit (psycopg", "_write_all", "wait_conn")),
    ("pipe: pickle / unpickle", ("recv (multiprocessing", "send (multiprocessing", "_recv_bytes",
                                 "_send_bytes", "dumps", "loads (multiprocessing")),
    ("ack path (PUBACK + gateway acks)", ("ack_in_order", "Client.ack (paho", "_send_puback", "send_acks",
                                          "AckSender", "ack_payloads", "ack_groups")),
    ("paho receive (packet parsing)", ("_handle_publish", "_packet_read", "_packet_handle", "loop_read",
                                       "_on_message", "on_message")),
    ("paho send (socket writes)", ("_packet_write", "loop_write", "_sock_send")),
    ("batching / dispatch", ("_dispatch", "_ready", "_idle_wait", "_collect", "_handover", "items_of",
                             "outcome (ingest/commit", "record (ingest/commit")),
]


def bucket(stack: str) -> str:
    frames = stack.split(";")[::-1]  # innermost first
    for frame in frames:
        for name, needles in BUCKETS:
            if any(n in frame for n in needles):
                return name
    return "other (" + (frames[0].split(" (")[0] if frames else "?") + ")"


def summarise(raw: Path) -> dict[str, Counter[str]]:
    """py-spy raw output: ``process;thread;frames... count`` per line → samples by process and bucket."""
    out: dict[str, Counter[str]] = {}
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack:
            continue
        proc = stack.split(";", 1)[0]
        role = "worker" if "multiprocessing" in proc or "spawn_main" in stack else "receiver"
        out.setdefault(role, Counter())[bucket(stack)] += int(n)
    return out


def _exit_cleanly(signum: int, frame: object) -> None:
    """SIGTERM (e.g. ``timeout``) unwinds like Ctrl-C, so the embedded stack is torn down."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backlog", type=int, default=120_000)
    p.add_argument("--seconds", type=float, default=12.0)
    p.add_argument("--keep", type=Path, help="also keep py-spy's raw output (and a flame graph) here")
    args = p.parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_cleanly)
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        print("py-spy not found: .venv/bin/pip install py-spy")
        return 2
    with running_stack() as stack, tempfile.TemporaryDirectory() as tmp:
        configs = mq.fleets(3, 8, 0)
        creds = stack.mosquitto.add_gateways([g for c in configs for g in c.gateway_ids()])
        group = mq.new_group()
        owner, url = fresh_db(stack, "prof")
        mq.enrol(owner, configs)  # ingest refuses readings of devices not enrolled on their gateway
        ingest = mq.Ingest(stack.mosquitto, url, f"prof-{group}", group)
        mq.session(stack.mosquitto, ingest.client_id, ingest.topic)
        per = args.backlog // len(configs)
        mq.publish(stack.mosquitto, creds, [dataclasses.replace(c, count=per) for c in configs])
        conn, count = mq.max_reading_id(url)
        ingest.start()
        try:
            while count() == 0:
                time.sleep(0.05)
            time.sleep(1.0)  # warm-up: workers connected, batches flowing
            raw = Path(tmp) / "ingest.raw"
            assert ingest.proc is not None
            before = count()
            subprocess.run([spy, "record", "--pid", str(ingest.proc.pid), "--subprocesses", "--rate", "200",
                            "--duration", str(int(args.seconds)), "--format", "raw", "--output", str(raw),
                            "--nonblocking"], check=True, capture_output=True)
            rows = count() - before
        finally:
            ingest.stop()
            conn.close()
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            shutil.copy(raw, args.keep / "ingest.raw")
        by_role = summarise(raw)
    print(f"{rows:,} readings committed while sampling ({rows / args.seconds:,.0f}/s, sampling slows it)")
    for role, counts in sorted(by_role.items()):
        total = sum(counts.values())
        print(f"\n{role}: {total:,} on-CPU samples at 200 Hz (= {total / 200 / args.seconds:.2f} cores)")
        for name, n in counts.most_common():
            print(f"  {name:<36} {100 * n / total:5.1f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
