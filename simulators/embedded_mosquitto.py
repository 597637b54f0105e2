"""A throwaway Mosquitto broker on a free loopback port, one account and ACL block per client.

Tests, the demo and the benchmarks provision gateway and ingest accounts here; the broker settings
answer the delivery traps measured on this machine (DOMAIN.md Part I).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import secrets
import shutil
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from gateway import contract
from simulators.server_host import (
    StackError,
    chown_tree,
    free_port,
    make_state_dir,
    port_open,
    server_binary,
    service_account,
    wait_until,
)

INGEST_USER = "rpmflow-ingest"
OBSERVER_USER = "rpmflow-observer"
# The stack's own readiness check: an account with no ACL block may connect and do nothing else,
# so checking the broker never takes over (and disconnects) a real client's id.
PROBE_USER = "rpmflow-stack-probe"
# Each listener binds a client's id to its username (use_username_as_clientid): one account can
# neither disconnect another's connection nor wipe its persistent session. docs/operations.md §3.
BIND_CLIENT_IDS = "use_username_as_clientid true\n"


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
        broker = cls(state_dir=make_state_dir("rpmflow-mqtt-", base))
        broker.port = broker.port or free_port()
        broker._account = service_account()
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
            "# generated by rpmflow (simulators/embedded_mosquitto.py)\n"
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
        chown_tree(d, self._account)

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
        own credentials disconnects nobody).

        Connected clients keep receiving, but on Mosquitto 2.0.11 a persistent session restored
        after a restart whose client has not reconnected yet gets nothing of what is published
        between the reload and its reconnect (docs/operations.md §3): tests that restart the
        broker provision their accounts before the restart."""
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
            [server_binary("mosquitto"), "-c", str(self.state_dir / "mosquitto.conf")],
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
            return port_open(self.port) and _mqtt_connack(self.port, PROBE_USER, probe_pw)

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
