"""A throwaway PostgreSQL cluster on a free loopback port, bootstrapped with the project's roles.

The demo, the test fixtures and the benchmarks start their database through this module; when we are
root the cluster runs as an unprivileged account that owns its state directory (server_host.py).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from ingest.dbroles import (  # the stack creates them by running the documented bootstrap script
    ALL_ROLES,
    DASHBOARD_ROLE,
    INGEST_ROLE,
    OWNER_ROLE,
    REPORTING_ROLE,
    TRIAGE_ROLE,
)
from simulators.server_host import (
    StackError,
    chown_tree,
    console_script,
    free_port,
    make_state_dir,
    pid_alive,
    port_open,
    server_binary,
    service_account,
    wait_until,
)


def pg_bin_dir() -> Path:
    """PostgreSQL's bin directory: ``$RPMFLOW_PG_BIN`` when set, else initdb's on PATH (or Debian's)."""
    pg_bin = os.environ.get("RPMFLOW_PG_BIN", "").strip()
    if pg_bin:
        if not os.access(Path(pg_bin) / "initdb", os.X_OK):
            raise StackError(f"RPMFLOW_PG_BIN={pg_bin} has no executable initdb")
        return Path(pg_bin)
    return Path(server_binary("initdb")).resolve().parent


def has_timescaledb(bin_dir: Path) -> bool:
    """Whether the PostgreSQL installation of ``bin_dir`` ships the timescaledb library.

    PostgreSQL finds its libraries relative to its binary (bin/../lib on Debian and on
    ../shared/timescaledb's private copy), so that is where the extension would be.
    """
    return (bin_dir.parent / "lib" / "timescaledb.so").exists()


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
    # False (the test suite): no fsync. A killed server or postmaster still loses nothing (its
    # writes are in the OS page cache); only an OS crash could, and a test cluster is thrown away.
    durable: bool = True

    @classmethod
    def create(
        cls, base: Path | None = None, *, bootstrap: bool = True, timescale_license: str | None = None,
        preload_timescaledb: bool = True, durable: bool = True,
    ) -> EmbeddedPostgres:
        pg = cls(state_dir=make_state_dir("rpmflow-pg-", base), bootstrap=bootstrap,
                 timescale_license=timescale_license, preload_timescaledb=preload_timescaledb,
                 durable=durable)
        pg.port = pg.port or free_port()
        pg.bin_dir = pg_bin_dir()
        pg._account = service_account()
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
        chown_tree(self.state_dir, self._account)
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
                f"fsync = {'on' if self.durable else 'off'}\n"
                f"full_page_writes = {'on' if self.durable else 'off'}\n"
                "synchronous_commit = on\n"
                "log_min_messages = warning\n"
            )
        self._log_path = self.state_dir / "postgres.log"
        chown_tree(self.state_dir, self._account)

    def _bin(self, name: str) -> str:
        path = self.bin_dir / name
        return str(path) if path.exists() else server_binary(name)  # psql may live elsewhere

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
        if not port_open(self.port):
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
            wait_until(lambda: not port_open(self.port), 30, "postgres to die")
            # Orphaned backends keep shared memory; wait for them before a restart.
            wait_until(lambda: not pid_alive(pid), 30, "postmaster to exit")

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.state_dir, ignore_errors=True)
