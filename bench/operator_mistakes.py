"""How long an operator waits for the one line: ``rpmflow-ingest migrate`` against an embedded
PostgreSQL with four classic mistakes (prints a table; run ``python bench/operator_mistakes.py``).

The bounds come from the settings: refused credentials are retried for ``AUTH_TIMEOUT_S`` (the
default, 30 s, here), a server never reached for ``STARTUP_TIMEOUT_S`` (set to 5 s here; the
default is 60 s); a malformed URL and a missing database stop at once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from simulators.embedded_postgres import EmbeddedPostgres
from simulators.server_host import free_port


def main() -> int:
    exe = str(Path(sys.executable).parent / "rpmflow-ingest")
    pg = EmbeddedPostgres.create()
    pg.start()
    try:
        u = urlsplit(pg.url)
        cases = {
            "malformed URL (port not a number)": pg.url.replace(str(u.port), "port"),
            "missing database": pg.url.rsplit("/", 1)[0] + "/nosuchdb",
            "wrong password (AUTH_TIMEOUT_S default 30)": pg.url.replace(str(u.password), "wrong"),
            "nothing on the port (STARTUP_TIMEOUT_S=5)": pg.url.replace(str(u.port), str(free_port())),
        }
        clean = {k: v for k, v in os.environ.items() if not k.startswith("RPMFLOW_")}
        print("| mistake | exit code | seconds to the line |\n|---|---|---|")
        for name, url in cases.items():
            env = dict(clean, RPMFLOW_DATABASE_URL=url, RPMFLOW_INGEST_STARTUP_TIMEOUT_S="5")
            started = time.monotonic()
            proc = subprocess.run([exe, "migrate"], env=env, capture_output=True, text=True, check=False)
            print(f"| {name} | {proc.returncode} | {time.monotonic() - started:.1f} |")
    finally:
        pg.destroy()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
