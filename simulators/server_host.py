"""How the embedded servers run on this host: free ports, polling, binaries, the unprivileged account.

Shared by the PostgreSQL and Mosquitto wrappers (embedded_postgres.py, embedded_mosquitto.py) and
the whole-pipeline runs, so each of them finds binaries and waits for readiness the same way.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


class StackError(RuntimeError):
    """A server of the embedded stack could not be started or did not become ready."""


def free_port() -> int:
    """Ask the kernel for a free loopback port (bind to 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll ``predicate`` until it holds; fail with ``what`` in the message after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() > deadline:
            raise StackError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def service_account() -> tuple[int, int] | None:
    """The (uid, gid) servers run as when we are root; None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return entry.pw_uid, entry.pw_gid
    raise StackError("running as root but neither a 'postgres' nor a 'nobody' account exists")


def console_script(name: str) -> str:
    """The console script installed next to this interpreter (the project's venv), else on PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        raise StackError(f"{name} is not installed: run scripts/setup.sh")
    return found


def server_binary(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    for candidate in (Path("/usr/sbin") / name, Path("/usr/local/sbin") / name):
        if candidate.exists():
            return str(candidate)
    raise StackError(f"{name} not found: run scripts/setup.sh (it installs the Debian packages)")


def chown_tree(path: Path, account: tuple[int, int] | None) -> None:
    if account is None:
        return
    uid, gid = account
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(root, name), uid, gid)


def make_state_dir(prefix: str, base: Path | None) -> Path:
    if base is None:
        path = Path(tempfile.mkdtemp(prefix=prefix))
    else:
        base.mkdir(parents=True, exist_ok=True)
        path = base / prefix.rstrip("-")
        path.mkdir(exist_ok=True)
    path.chmod(0o700)
    return path


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
