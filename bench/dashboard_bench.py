"""Queue page and queue API latency with 10,000 open flags over 1,000 patients.

Starts a throwaway PostgreSQL, migrates it, loads the data with COPY, serves the app with uvicorn
on a free port, signs a nurse in, and times N requests of each endpoint. "server" is the app's own
``Server-Timing`` (request in → response head out, including the audit row each view writes);
"round trip" adds loopback HTTP and the client. Target: p99 server time < 200 ms.

    .venv/bin/python bench/dashboard_bench.py [--patients 1000] [--flags 10000] [--requests 200]
"""

from __future__ import annotations

import argparse
import random
import secrets
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dashboards.app import create_app
from dashboards.passwords import hash_password
from dashboards.settings import Settings
from gateway.runtime.gc_tuning import tune_gc
from ingest.migrate import migrate
from simulators.embedded_postgres import EmbeddedPostgres
from simulators.server_host import free_port

PASSWORD = "bench password 123"
SEVERITIES = ("critical", "high", "moderate", "info")
# (label, path): every page a nurse opens at 10,000 open flags, and the API twins.
ENDPOINTS = (
    ("queue page (HTML, 200 rows)", "/queue"),
    ("queue API (JSON, 200 rows)", "/api/queue"),
    ("queue API critical only", "/api/queue?severity=critical"),
    ("queue live fragment", "/queue/rows"),
    ("patient page, 90 days", "/patients/1?days=90"),
)
RULES = ("bp_crisis", "bp_stage2_persistent", "glucose_hypo_l2", "glucose_hyper_l2", "patient_silent")


def load(url: str, patients: int, flags: int) -> None:
    rnd = random.Random(7)
    now = datetime.now(UTC)
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO users (username, display_name, role, password_hash) VALUES"
                     " ('nurse', 'Bench Nurse', 'nurse', %s)", (hash_password(PASSWORD),))
        with conn.cursor().copy("COPY patients (mrn, display_name, state, timezone) FROM STDIN") as cp:
            for i in range(patients):
                cp.write_row((f"MRN-{i:06d}", f"Patient {i:04d}", "NY", "America/New_York"))
        with conn.cursor().copy(
            "COPY readings (message_id, gateway_id, device_id, patient_id, kind, measured_at, received_at,"
            " systolic_mmhg, diastolic_mmhg, pulse_bpm, raw) FROM STDIN"
        ) as cp:
            for i in range(flags):
                at = now - timedelta(minutes=rnd.randint(1, 60 * 24 * 20))
                cp.write_row((secrets.token_hex(16), "gw-bench", f"bp-{i % patients}", 1 + i % patients,
                              "blood_pressure", at, at, rnd.randint(140, 200), rnd.randint(85, 125), 72,
                              b"\x00"))
        with conn.cursor().copy(
            "COPY flags (patient_id, subject_key, rule_id, episode_key, severity, reason, reading_ids,"
            " last_reading_at, opened_at) FROM STDIN"
        ) as cp:
            for i in range(flags):
                pid = 1 + i % patients
                opened = now - timedelta(minutes=rnd.randint(1, 60 * 24 * 20))
                cp.write_row((pid, f"patient:{pid}", rnd.choice(RULES), f"ep-{i}",
                              rnd.choices(SEVERITIES, weights=(1, 3, 4, 2))[0], "bench flag",
                              [i + 1], opened, opened))
        # Care-team scoping (issue 14): the nurse's team holds every patient, so the queue is the
        # whole clinic's, filtered through patients_visible_to like any nurse's.
        conn.execute("INSERT INTO care_teams (name) VALUES ('bench')")
        conn.execute("INSERT INTO care_team_members (team_id, user_id) SELECT team_id, user_id"
                     " FROM care_teams, users WHERE name = 'bench' AND username = 'nurse'")
        conn.execute("INSERT INTO care_team_patients (team_id, patient_id) SELECT team_id, patient_id"
                     " FROM care_teams, patients WHERE name = 'bench'")
        conn.execute("ANALYZE")


@contextmanager
def served(database_url: str) -> Iterator[str]:
    """The dashboard on ``database_url`` under uvicorn on a free loopback port; yields its base URL."""
    app = create_app(Settings(database_url=database_url, secure_cookies=False, pool_max_size=4))
    tune_gc()  # as `rpmflow-dashboard serve` does before serving
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:  # a script, not a test: a bounded poll of uvicorn's own flag
        if time.monotonic() > deadline:
            raise SystemExit("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def timed(client: httpx.Client, path: str, n: int) -> tuple[list[float], list[float], int, bytes]:
    """``n`` sequential requests: server and round-trip times, the body's size before compression."""
    server: list[float] = []
    total: list[float] = []
    body = b""
    for _ in range(n):
        t0 = time.perf_counter()
        r = client.get(path)
        total.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
        body = r.content  # httpx has already undone the gzip: this is the size before compression
        server.append(float(r.headers["server-timing"].split("dur=")[1]))
    return server, total, len(body), body


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--patients", type=int, default=1000)
    ap.add_argument("--flags", type=int, default=10_000)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--dump", type=Path, help="write each endpoint's last response body into this folder")
    args = ap.parse_args()
    pg = EmbeddedPostgres.create()
    pg.start()
    try:
        migrate(pg.urls().owner)
        t0 = time.perf_counter()
        load(pg.url, args.patients, args.flags)
        print(f"loaded {args.patients} patients, {args.flags} open flags in {time.perf_counter() - t0:.1f} s")
        with served(pg.urls().dashboard) as base, httpx.Client(base_url=base, timeout=30) as c:
            page = c.get("/login").text
            csrf = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
            c.post("/login", data={"username": "nurse", "password": PASSWORD, "csrf_token": csrf})
            rows = []
            singles = []
            for label, path in ENDPOINTS:
                first, _, _, _ = timed(c, path, 1)  # a single request on a cold plan and template cache
                singles.append((label, first[0]))
                timed(c, path, 10)  # warm-up: plans, pool, template cache
                srv, tot, size, body = timed(c, path, args.requests)
                rows.append((label, srv, tot, size))
                if args.dump:
                    args.dump.mkdir(parents=True, exist_ok=True)
                    (args.dump / (path.strip("/").replace("/", "_").split("?")[0] + ".out")).write_bytes(body)
        print(f"\n{args.requests} sequential requests each, {args.flags} open flags,"
              f" {args.patients} patients\n")
        print(f"{'endpoint':32} {'p50 srv':>9} {'p99 srv':>9} {'max srv':>9} {'p50 rtt':>9} {'p99 rtt':>9}"
              f" {'kB':>7}")
        for label, srv, tot, size in rows:
            print(f"{label:32} {statistics.median(srv):8.1f}ms {pct(srv, 0.99):8.1f}ms {max(srv):8.1f}ms"
                  f" {statistics.median(tot):8.1f}ms {pct(tot, 0.99):8.1f}ms {size / 1000:7.1f}")
        print("\nsingle requests (the first of each endpoint, cold), server time:")
        for label, ms in singles:
            print(f"  {label:32} {ms:8.1f}ms")
        worst = max(pct(srv, 0.99) for _, srv, _, _ in rows)
        verdict = "met" if worst < 200 else "MISSED"
        print(f"\ntarget p99 server < 200 ms: {verdict} (worst p99 {worst:.1f} ms)")
    finally:
        pg.destroy()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
