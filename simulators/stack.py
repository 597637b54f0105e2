"""A throwaway PostgreSQL cluster and Mosquitto broker on free loopback ports.

The demo and the test fixtures both start the world through this module, so nothing relies on
services someone else started. Both servers refuse (PostgreSQL) or should not (Mosquitto) run as
root, so when we are root they run as an unprivileged account that owns their state directory.
Each server exposes ``stop()``/``start()`` on the same port and data so tests can cause outages.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import logging
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from gateway import contract
from ingest.dbroles import (  # the stack creates them by running the documented bootstrap script
    ALL_ROLES,
    DASHBOARD_ROLE,
    INGEST_ROLE,
    OWNER_ROLE,
    REPORTING_ROLE,
    TRIAGE_ROLE,
)

log = logging.getLogger(__name__)

INGEST_USER = "rpmflow-ingest"
OBSERVER_USER = "rpmflow-observer"
# The stack's own readiness check: an account with no ACL block may connect and do nothing else,
# so checking the broker never takes over (and disconnects) a real client's id.
PROBE_USER = "rpmflow-stack-probe"
# Each listener binds a client's id to its username (use_username_as_clientid): one account can
# neither disconnect another's connection nor wipe its persistent session. docs/operations.md §3.
BIND_CLIENT_IDS = "use_username_as_clientid true\n"


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


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _service_account() -> tuple[int, int] | None:
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


def pg_bin_dir() -> Path:
    """PostgreSQL's bin directory: ``$RPMFLOW_PG_BIN`` when set, else initdb's on PATH (or Debian's)."""
    pg_bin = os.environ.get("RPMFLOW_PG_BIN", "").strip()
    if pg_bin:
        if not os.access(Path(pg_bin) / "initdb", os.X_OK):
            raise StackError(f"RPMFLOW_PG_BIN={pg_bin} has no executable initdb")
        return Path(pg_bin)
    return Path(_server_binary("initdb")).resolve().parent


def _server_binary(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    for candidate in (Path("/usr/sbin") / name, Path("/usr/local/sbin") / name):
        if candidate.exists():
            return str(candidate)
    raise StackError(f"{name} not found: run scripts/setup.sh (it installs the Debian packages)")


def has_timescaledb(bin_dir: Path) -> bool:
    """Whether the PostgreSQL installation of ``bin_dir`` ships the timescaledb library.

    PostgreSQL finds its libraries relative to its binary (bin/../lib on Debian and on
    ../shared/timescaledb's private copy), so that is where the extension would be.
    """
    return (bin_dir.parent / "lib" / "timescaledb.so").exists()


def _chown_tree(path: Path, account: tuple[int, int] | None) -> None:
    if account is None:
        return
    uid, gid = account
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(root, name), uid, gid)


def _make_state_dir(prefix: str, base: Path | None) -> Path:
    if base is None:
        path = Path(tempfile.mkdtemp(prefix=prefix))
    else:
        base.mkdir(parents=True, exist_ok=True)
        path = base / prefix.rstrip("-")
        path.mkdir(exist_ok=True)
    path.chmod(0o700)
    return path


@dataclass(frozen=True)
class DatabaseUrls:
    """One database as each of rpmflow's roles sees it (ingest/dbroles.py).

    ``superuser`` is for the stack's own housekeeping and for tests that seed or inspect; the
    services get their own role, migrate gets the owner.
    """

    superuser: str
    owner: str
    ingest: str
    triage: str
    dashboard: str
    reporting: str


@dataclass
class EmbeddedPostgres:
    """One PostgreSQL cluster: initdb once, then start/stop on the same port.

    ``user`` is the cluster superuser (``url``); on first start the project's roles are created
    with the same bootstrap statements a DBA runs (``--print-bootstrap-sql``), and the database is
    owned by ``rpmflow_owner``. Services connect with ``urls()``, one role each.
    """

    state_dir: Path
    port: int = 0
    user: str = "rpmflow"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    database: str = "rpmflow"
    role_passwords: dict[str, str] = field(
        default_factory=lambda: {r: secrets.token_urlsafe(16) for r in ALL_ROLES}
    )
    bootstrap: bool = True  # False: a bare cluster, as a DBA finds it (the operator-path test)
    _account: tuple[int, int] | None = None
    _log_path: Path | None = None
    # The PostgreSQL binaries of this cluster, chosen once at create (pg_bin_dir()).
    bin_dir: Path = Path()
    # Set by initdb: the binaries ship TimescaleDB and the cluster preloads it.
    timescaledb: bool = False
    # ``apache`` makes a community build behave like the Apache-only edition (tests of both).
    timescale_license: str | None = None
    # False: like an external server where the extension is installed but not preloaded.
    preload_timescaledb: bool = True

    @classmethod
    def create(
        cls, base: Path | None = None, *, bootstrap: bool = True, timescale_license: str | None = None,
        preload_timescaledb: bool = True,
    ) -> EmbeddedPostgres:
        pg = cls(state_dir=_make_state_dir("rpmflow-pg-", base), bootstrap=bootstrap,
                 timescale_license=timescale_license, preload_timescaledb=preload_timescaledb)
        pg.port = pg.port or free_port()
        pg.bin_dir = pg_bin_dir()
        pg._account = _service_account()
        pg._initdb()
        return pg

    @property
    def data_dir(self) -> Path:
        return self.state_dir / "data"

    @property
    def url(self) -> str:
        """The cluster superuser's URL: housekeeping and test set-up only, never a service."""
        return self.url_as(self.user, self.password)

    def url_as(self, role: str, password: str, database: str | None = None) -> str:
        return (
            f"postgresql://{quote(role)}:{quote(password)}@127.0.0.1:{self.port}/"
            f"{quote(database or self.database)}"
        )

    def urls(self, database: str | None = None) -> DatabaseUrls:
        """``database`` (default: the stack's) as the superuser, the owner and each service role."""
        pw = self.role_passwords
        return DatabaseUrls(
            superuser=self.url_as(self.user, self.password, database),
            owner=self.url_as(OWNER_ROLE, pw[OWNER_ROLE], database),
            ingest=self.url_as(INGEST_ROLE, pw[INGEST_ROLE], database),
            triage=self.url_as(TRIAGE_ROLE, pw[TRIAGE_ROLE], database),
            dashboard=self.url_as(DASHBOARD_ROLE, pw[DASHBOARD_ROLE], database),
            reporting=self.url_as(REPORTING_ROLE, pw[REPORTING_ROLE], database),
        )

    def _run(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        # A new session: a Ctrl-C meant for the demo must not reach the postmaster directly;
        # the owner stops it in order (after the services that write to it).
        uid_gid = self._account
        return subprocess.run(
            args,
            check=True,
            capture_output=True,
            text=True,
            user=uid_gid[0] if uid_gid else None,
            group=uid_gid[1] if uid_gid else None,
            cwd=self.state_dir,
            start_new_session=True,
        )

    def _initdb(self) -> None:
        pwfile = self.state_dir / "pwfile"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        _chown_tree(self.state_dir, self._account)
        try:
            self._run(
                [
                    self._bin("initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    self.user,
                    "--pwfile",
                    str(pwfile),
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C",
                ]
            )
        except subprocess.CalledProcessError as exc:
            raise StackError(f"initdb failed: {exc.stderr.strip()}") from exc
        finally:
            pwfile.unlink(missing_ok=True)
        shipped = has_timescaledb(self.bin_dir)
        self.timescaledb = self.preload_timescaledb and shipped
        conf = self.data_dir / "postgresql.conf"
        with conf.open("a") as f:
            f.write(self._timescale_conf())
            f.write(
                "\n# rpmflow embedded stack\n"
                "listen_addresses = '127.0.0.1'\n"
                f"port = {self.port}\n"
                f"unix_socket_directories = '{self.state_dir}'\n"
                "max_connections = 200\n"
                "shared_buffers = 128MB\n"
                "fsync = on\n"
                "synchronous_commit = on\n"
                "log_min_messages = warning\n"
            )
        self._log_path = self.state_dir / "postgres.log"
        _chown_tree(self.state_dir, self._account)

    def _bin(self, name: str) -> str:
        path = self.bin_dir / name
        return str(path) if path.exists() else _server_binary(name)  # psql may live elsewhere

    def _timescale_conf(self) -> str:
        """Preload TimescaleDB when these binaries have it: installed but not preloaded, CREATE
        EXTENSION is a FATAL error. Without it, nothing is added and the cluster is plain."""
        if not self.timescaledb:
            return ""
        text = ("\n# TimescaleDB ships with these binaries\n"
                "shared_preload_libraries = 'timescaledb'\n"
                "timescaledb.telemetry_level = off\n")
        if self.timescale_license:
            text += f"timescaledb.license = '{self.timescale_license}'\n"
        return text

    def start(self, timeout: float = 60.0) -> None:
        log_path = self.state_dir / "postgres.log"
        try:
            self._run(
                [self._bin("pg_ctl"), "-D", str(self.data_dir), "-l", str(log_path), "-w",
                 "-t", str(int(timeout)), "start"]
            )
        except subprocess.CalledProcessError as exc:
            tail = log_path.read_text()[-2000:] if log_path.exists() else ""
            raise StackError(f"postgres did not start: {exc.stderr.strip()} {tail}") from exc
        wait_until(self._accepts_queries, timeout, f"postgres on port {self.port}")
        if self.bootstrap:
            self._ensure_database()

    def _psql(self, sql: str, database: str = "postgres", variables: dict[str, str] | None = None) -> str:
        """Run SQL (read from stdin, so psql variables work and nothing secret is in argv)."""
        env = dict(os.environ, PGPASSWORD=self.password)
        args = [self._bin("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "-d",
                database, "-Atq", "-v", "ON_ERROR_STOP=1", "-f", "-"]
        head = "".join(f"\\set {name} '{value}'\n" for name, value in (variables or {}).items())
        out = subprocess.run(args, input=head + sql, check=True, capture_output=True, text=True, env=env)
        return out.stdout.strip()

    def _accepts_queries(self) -> bool:
        if not _port_open(self.port):
            return False
        try:
            return self._psql("select 1") == "1"
        except subprocess.CalledProcessError:
            return False

    def _ensure_database(self) -> None:
        """First start: the project's roles and its database, as the documented bootstrap makes them."""
        if self._psql(f"select 1 from pg_roles where rolname = '{OWNER_ROLE}'") == "1":
            return
        try:
            script = subprocess.run(
                [console_script("rpmflow-ingest"), "migrate", "--print-bootstrap-sql", "--database",
                 self.database], check=True, capture_output=True, text=True,
            ).stdout
            variables = {f"{r.removeprefix('rpmflow_')}_password": p for r, p in self.role_passwords.items()}
            self._psql(script, variables=variables)
            self.create_timescale_extension(self.database)
        except subprocess.CalledProcessError as exc:
            raise StackError(f"database bootstrap failed: {exc.stderr.strip()}") from exc

    def create_timescale_extension(self, database: str) -> None:
        """As the DBA would: CREATE EXTENSION needs a superuser (TimescaleDB is not a trusted
        extension); migrate, running as the owner, then builds the hypertable and the rest."""
        if self.timescaledb:
            self._psql("CREATE EXTENSION IF NOT EXISTS timescaledb", database=database)

    def create_database(self, name: str, template: str | None = None) -> DatabaseUrls:
        """Another database owned by rpmflow_owner (tests clone a migrated template this way)."""
        clause = f' TEMPLATE "{template}"' if template else ""
        self._psql(f'CREATE DATABASE "{name}"{clause} OWNER {OWNER_ROLE}')
        return self.urls(name)

    def stop(self, mode: str = "fast") -> None:
        if not (self.data_dir / "postmaster.pid").exists():
            return
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run([self._bin("pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop"])

    def kill(self) -> None:
        """Crash the postmaster (SIGKILL), as a power cut would; ``start()`` recovers from WAL."""
        pid_file = self.data_dir / "postmaster.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text().split()[0])
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            wait_until(lambda: not _port_open(self.port), 30, "postgres to die")
            # Orphaned backends keep shared memory; wait for them before a restart.
            wait_until(lambda: not _pid_alive(pid), 30, "postmaster to exit")

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.state_dir, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def mosquitto_password_hash(password: str, salt: bytes | None = None) -> str:
    """A Mosquitto 2.x ``$7$`` entry: PBKDF2-SHA512, 101 iterations, as mosquitto_passwd writes."""
    salt = salt or secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, 101)
    return f"$7$101${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


@dataclass
class EmbeddedMosquitto:
    """One Mosquitto broker with a password file and explicit per-account ACLs, every listener
    binding client ids to usernames, so one identity per connection: each ingest process gets its
    own account (:meth:`add_ingest`), like each gateway (:meth:`add_gateway`).

    Settings answer the delivery traps measured on this machine (DOMAIN.md Part I): a per-client
    queue far above the 1000 default (but bounded in bytes), a one-second autosave so a restart
    keeps queued QoS 1 messages, and an in-flight window wide enough for batched acks.
    """

    state_dir: Path
    port: int = 0
    tls_port: int | None = None
    accounts: dict[str, str] = field(default_factory=dict)
    ingest_users: list[str] = field(default_factory=lambda: [INGEST_USER])
    _account: tuple[int, int] | None = None
    _proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def create(cls, base: Path | None = None, *, tls: bool = False) -> EmbeddedMosquitto:
        broker = cls(state_dir=_make_state_dir("rpmflow-mqtt-", base))
        broker.port = broker.port or free_port()
        broker._account = _service_account()
        if tls:
            broker.tls_port = free_port()
            make_local_ca(broker.state_dir / "tls", "127.0.0.1")
        broker.accounts[INGEST_USER] = secrets.token_urlsafe(16)
        broker.accounts[OBSERVER_USER] = secrets.token_urlsafe(16)
        broker.accounts[PROBE_USER] = secrets.token_urlsafe(16)
        broker._write_config()
        return broker

    @property
    def ingest_password(self) -> str:
        return self.accounts[INGEST_USER]

    def url_for(self, user: str) -> str:
        return f"mqtt://{quote(user)}:{quote(self.accounts[user])}@127.0.0.1:{self.port}"

    @property
    def ingest_url(self) -> str:
        return self.url_for(INGEST_USER)

    @property
    def ca_file(self) -> Path:
        """The local CA that signed the broker's certificate (TLS listener only)."""
        return self.state_dir / "tls" / "ca.crt"

    def tls_url_for(self, user: str) -> str:
        if self.tls_port is None:
            raise StackError("this broker was created without TLS")
        return f"mqtts://{quote(user)}:{quote(self.accounts[user])}@127.0.0.1:{self.tls_port}"

    @property
    def gateway_ids(self) -> list[str]:
        servers = {*self.ingest_users, OBSERVER_USER, PROBE_USER}
        return [a for a in self.accounts if a not in servers]

    def add_ingest(self, name: str | None = None) -> str:
        """Provision one more ingest account (its own password, the ingest ACL) and return its URL:
        every ingest process needs its own, since its client id is its username."""
        name = name or f"{INGEST_USER}-{secrets.token_hex(3)}"
        if name in self.accounts and name not in self.ingest_users:
            raise ValueError(f"{name!r} is already another kind of account")
        if name not in self.accounts:
            self.accounts[name] = secrets.token_urlsafe(16)
            self.ingest_users.append(name)
            self.reload(new=[name])
        return self.url_for(name)

    def add_gateway(self, gateway_id: str) -> str:
        """Provision one gateway account (its own password, its own topics); returns the password."""
        if "/" in gateway_id or "+" in gateway_id or "#" in gateway_id or not gateway_id:
            raise ValueError(f"invalid gateway id {gateway_id!r}")
        if gateway_id not in self.accounts:
            self.accounts[gateway_id] = secrets.token_urlsafe(16)
        return self.accounts[gateway_id]

    def add_gateways(self, gateway_ids: list[str]) -> dict[str, str]:
        new = [g for g in gateway_ids if g not in self.accounts]
        out = {g: self.add_gateway(g) for g in gateway_ids}
        self.reload(new=new)
        return out

    def _acl_text(self) -> str:
        lines = ["# generated by rpmflow: one block per account, no patterns, no anonymous access"]
        for ingest in self.ingest_users:
            lines += [
                f"user {ingest}",
                f"topic read {contract.READINGS_FILTER}",
                f"topic read {contract.STATUS_FILTER}",
                f"topic read $share/+/{contract.READINGS_FILTER}",
                f"topic read $share/+/{contract.STATUS_FILTER}",
                f"topic write {contract.ACKS_FILTER}",
                "",
            ]
        lines += [
            f"user {OBSERVER_USER}",
            f"topic read {contract.TOPIC_ROOT}/#",
            "",
        ]
        for gw in self.gateway_ids:
            lines += [
                f"user {gw}",
                f"topic write {contract.readings_topic(gw)}",
                f"topic readwrite {contract.status_topic(gw)}",
                f"topic read {contract.acks_topic(gw)}",
                "",
            ]
        return "\n".join(lines) + "\n"

    def _write_config(self) -> None:
        d = self.state_dir
        (d / "passwd").write_text(
            "".join(f"{u}:{mosquitto_password_hash(p)}\n" for u, p in self.accounts.items())
        )
        (d / "acl").write_text(self._acl_text())
        (d / "data").mkdir(exist_ok=True)
        (d / "mosquitto.conf").write_text(
            "# generated by rpmflow (simulators/stack.py)\n"
            "per_listener_settings false\n"
            "allow_anonymous false\n"
            f"password_file {d / 'passwd'}\n"
            f"acl_file {d / 'acl'}\n"
            f"listener {self.port} 127.0.0.1\n"
            + BIND_CLIENT_IDS +
            "persistence true\n"
            f"persistence_location {d / 'data'}/\n"
            "autosave_interval 1\n"
            "max_queued_messages 2000000\n"
            "max_queued_bytes 1073741824\n"
            "max_inflight_messages 1000\n"
            "max_packet_size 1048576\n"
            "persistent_client_expiration 14d\n"
            "set_tcp_nodelay true\n"
            "log_dest stderr\n"
            "log_type error\n"
            "log_type warning\n"
            "log_type notice\n"
            "connection_messages false\n"
            + self._tls_listener_text()
        )
        _chown_tree(d, self._account)

    def _tls_listener_text(self) -> str:
        if self.tls_port is None:
            return ""
        t = self.state_dir / "tls"
        return (
            f"listener {self.tls_port} 127.0.0.1\n"
            + BIND_CLIENT_IDS +
            f"cafile {t / 'ca.crt'}\n"
            f"certfile {t / 'server.crt'}\n"
            f"keyfile {t / 'server.key'}\n"
            "tls_version tlsv1.2\n"
        )

    def reload(self, new: list[str] | None = None, timeout: float = 10.0) -> None:
        """Rewrite password and ACL files; a running broker re-reads them on SIGHUP. Returns once
        the ``new`` accounts are accepted (none of them is connected yet, so checking with their
        own credentials disconnects nobody)."""
        self._write_config()
        if self._proc and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGHUP)
            for user in new or []:
                accepted = functools.partial(_mqtt_connack, self.port, user, self.accounts[user])
                wait_until(accepted, timeout, f"mosquitto to accept the new account {user}")

    def start(self, timeout: float = 30.0) -> None:
        if self._proc and self._proc.poll() is None:
            return
        self._write_config()
        uid_gid = self._account
        log_file = (self.state_dir / "mosquitto.log").open("ab")
        self._proc = subprocess.Popen(
            [_server_binary("mosquitto"), "-c", str(self.state_dir / "mosquitto.conf")],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            user=uid_gid[0] if uid_gid else None,
            group=uid_gid[1] if uid_gid else None,
            cwd=self.state_dir,
            start_new_session=True,
        )
        log_file.close()
        proc = self._proc

        def ready() -> bool:
            if proc.poll() is not None:
                tail = (self.state_dir / "mosquitto.log").read_text(errors="replace")[-2000:]
                raise StackError(f"mosquitto exited with {proc.returncode}: {tail}")
            probe_pw = self.accounts[PROBE_USER]
            return _port_open(self.port) and _mqtt_connack(self.port, PROBE_USER, probe_pw)

        wait_until(ready, timeout, f"mosquitto on port {self.port}")

    def stop(self, timeout: float = 30.0) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    def kill(self) -> None:
        if self._proc and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(30)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int:
        """The broker's process id (benchmarks read its CPU time)."""
        if self._proc is None:
            raise StackError("mosquitto is not running")
        return self._proc.pid

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.state_dir, ignore_errors=True)


def make_local_ca(directory: Path, host: str) -> None:
    """A throwaway CA and a server certificate for ``host``, made with the openssl CLI."""
    directory.mkdir(parents=True, exist_ok=True)
    openssl = shutil.which("openssl")
    if openssl is None:
        raise StackError("openssl not found: run scripts/setup.sh")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True, cwd=directory)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", "/CN=rpmflow local CA",
        "-keyout", "ca.key", "-out", "ca.crt")
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={host}", "-keyout", "server.key",
        "-out", "server.csr")
    (directory / "san.ext").write_text(f"subjectAltName=IP:{host},DNS:localhost\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "30", "-extfile", "san.ext", "-out", "server.crt")


def _mqtt_connack(port: int, user: str, password: str) -> bool:
    """A raw MQTT 3.1.1 CONNECT → CONNACK exchange: proves the broker really accepts clients."""
    def field_(b: bytes) -> bytes:
        return len(b).to_bytes(2, "big") + b

    client_id = b"rpmflow-probe-" + secrets.token_hex(4).encode()
    variable = field_(b"MQTT") + bytes([4, 0xC2]) + (10).to_bytes(2, "big")
    payload = field_(client_id) + field_(user.encode()) + field_(password.encode())
    body = variable + payload
    packet = bytes([0x10, len(body)]) + body
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(packet)
            reply = s.recv(4)
            ok = len(reply) == 4 and reply[0] == 0x20 and reply[3] == 0
            with contextlib.suppress(OSError):
                s.sendall(bytes([0xE0, 0]))
            return ok
    except OSError:
        return False


@dataclass
class Stack:
    """PostgreSQL + Mosquitto, started together, stopped together."""

    postgres: EmbeddedPostgres
    mosquitto: EmbeddedMosquitto

    @property
    def database_url(self) -> str:
        """The superuser URL (housekeeping); services use ``database_urls``."""
        return self.postgres.url

    @property
    def database_urls(self) -> DatabaseUrls:
        return self.postgres.urls()

    def stop(self) -> None:
        self.mosquitto.stop()
        self.postgres.stop()

    def destroy(self) -> None:
        self.mosquitto.destroy()
        self.postgres.destroy()


def start_stack(base: Path | None = None, gateways: list[str] | None = None) -> Stack:
    pg = EmbeddedPostgres.create(base)
    broker = EmbeddedMosquitto.create(base)
    for gw in gateways or []:
        broker.add_gateway(gw)
    try:
        pg.start()
        broker.start()
    except BaseException:
        broker.destroy()
        pg.destroy()
        raise
    log.info("embedded stack: postgres on %d, mosquitto on %d", pg.port, broker.port)
    return Stack(pg, broker)


@contextlib.contextmanager
def running_stack(base: Path | None = None, gateways: list[str] | None = None) -> Iterator[Stack]:
    stack = start_stack(base, gateways)
    try:
        yield stack
    finally:
        stack.destroy()
