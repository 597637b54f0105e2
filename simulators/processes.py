"""Service processes for the whole-pipeline runs (demo, chaos): console-script lookup and lifetime.

Both runs start each component through its installed console script, as an operator would, in its
own session (process group), so a stop or a kill -9 reaches the service and every child it spawned.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from simulators.server_host import StackError
from simulators.server_host import console_script as console_script  # re-exported: demo, chaos

log = logging.getLogger(__name__)


AUDIT_KEY_ENV = "RPMFLOW_AUDIT_KEY"


def run_audit_key() -> str:
    """One audit-chain key per orchestration run (demo, chaos), kept in our own environment too, so
    the services and this process's own audit writes and checks share it (triage/clinical/audit_key.py)."""
    return os.environ.setdefault(AUDIT_KEY_ENV, secrets.token_urlsafe(32))


def service_env(database_url: str | None = None) -> dict[str, str]:
    """Our environment minus every ``RPMFLOW_`` setting (the run sets its own), plus the database
    URL of the role the process connects as (none for a gateway) and the run's audit key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RPMFLOW_")}
    if database_url is not None:
        env["RPMFLOW_DATABASE_URL"] = database_url
    env[AUDIT_KEY_ENV] = run_audit_key()
    env["PYTHONUNBUFFERED"] = "1"  # log lines reach the log file as they are written
    return env


def run_to_completion(argv: list[str], env: dict[str, str]) -> None:
    """Run a one-shot command (migrate, seed); a non-zero exit raises with what it printed."""
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        command = " ".join([Path(argv[0]).name, *argv[1:2]])
        raise StackError(f"{command} failed: {out.stderr.strip() or out.stdout.strip()}")


@dataclass
class ServiceProcess:
    """One long-running service, its output appended to ``log_path``."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def run_command(cls, name: str, script: str, env: dict[str, str], logs: Path) -> Self:
        """``<script> run`` as service ``name``, logging to ``<logs>/<name>.log``."""
        return cls(name, [console_script(script), "run"], env, logs / f"{name}.log")

    def start(self) -> None:
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self, wait_s: float = 30.0) -> None:
        """SIGKILL the whole process group (no clean shutdown) and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(wait_s)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, then SIGKILL if the service has not exited within ``timeout``."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop within %.0f s after SIGTERM: killing it", self.name, timeout)
            self.kill9(wait_s=timeout)
