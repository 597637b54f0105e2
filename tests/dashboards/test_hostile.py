"""Hostile input against the real app under uvicorn (served as ``rpmflow-dashboard run`` serves it).

1. Classic injection payloads through every rendered form field and every OpenAPI parameter:
   never a 5xx, tables intact, anything stored is stored verbatim and rendered escaped.
2. Roles without access get 403 and no patient data in the body.
3. Oversized bodies (declared and chunked), heads and forms: 413 / 4xx, never 5xx.
4. Slow-loris clients are cut off at the head timeout while others are served.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import psycopg
import pytest
import uvicorn

from dashboards.app import create_app
from dashboards.limits import server_options
from dashboards.policy import ANY, POLICY, ROLES
from dashboards.sessions import create_token
from dashboards.settings import Settings
from simulators.embedded_postgres import DatabaseUrls
from simulators.server_host import free_port
from tests.dashboards.conftest import settings_for
from tests.dashboards.live import csrf_of, sign_in
from tests.dashboards.seed import PASSWORD, World
from tests.waiting import wait_for

HEAD_TIMEOUT = 3.0
KEEP_ALIVE = 2.0
LONG = "A" * 20_000 + "<script>alert(1)</script>"
PAYLOADS = [
    "' OR 1=1 --",
    "1; DROP TABLE readings; --",
    '"><script>alert(1)</script>',
    "<img src=x onerror=alert(1)>",
    "{{7*7}}",
    "../../etc/passwd",
    LONG,
    "nul\x00byte",
    "rtl\u202egnp.exe",
]
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
RAW_XSS = ("<script>alert(1)</script>", "<img src=x onerror=alert(1)>")
MARKERS = ("OR 1=1", "DROP TABLE", "alert(1)", "7*7", "etc/passwd", "\u202e")
# Tables no dashboard action writes: their row counts must not move, whatever was sent.
FROZEN = ("readings", "dead_letters", "flags", "gateway_status", "billable_events")


# --------------------------------------------------------------------------- server and clients


@contextmanager
def serve_limited(settings: Settings) -> Iterator[int]:
    """The app under uvicorn with the same connection limits ``rpmflow-dashboard run`` applies."""
    port = free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning",
                            lifespan="on", timeout_graceful_shutdown=1, **server_options(settings))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-hostile-{port}", daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, 20, "uvicorn to start")
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        assert not thread.is_alive(), "uvicorn did not stop"


@pytest.fixture(scope="module")
def port(module_db_urls: DatabaseUrls, module_world: World) -> Iterator[int]:
    settings = settings_for(module_db_urls.dashboard, header_timeout_seconds=HEAD_TIMEOUT,
                            keep_alive_seconds=KEEP_ALIVE)
    assert settings.max_body_bytes == 1024 * 1024  # the default is what is tested
    with serve_limited(settings) as p:
        yield p


@pytest.fixture(scope="module")
def base(port: int) -> str:
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def sessions(base: str, module_world: World) -> Iterator[dict[str, httpx.Client]]:
    out: dict[str, httpx.Client] = {}
    for role in ROLES:
        c = httpx.Client(base_url=base, timeout=20)
        assert sign_in(c, module_world.usernames[role]).status_code == 303
        out[role] = c
    yield out
    for c in out.values():
        c.close()


@pytest.fixture(scope="module")
def tokens(module_db_url: str, module_world: World) -> dict[str, str]:
    with psycopg.connect(module_db_url, autocommit=True) as conn:
        return {role: create_token(conn, uid, "hostile")[1] for role, uid in module_world.users.items()}


def _counts(url: str) -> dict[str, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        names = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            " AND table_type = 'BASE TABLE'").fetchall()]
        return {n: int(conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0])  # type: ignore[index]
                for n in names}


def _ok_status(r: httpx.Response, *, sign_in_form: bool = False) -> bool:
    """A correct success (2xx, or 303 to a local page) or a clear refusal (4xx; 401 only on sign-in)."""
    if r.status_code == 303:
        location = r.headers.get("location", "")
        local = location.startswith("/") and not location.startswith("//")
        return local and (sign_in_form or not location.startswith("/login"))
    if r.status_code == 401:
        return sign_in_form
    return 200 <= r.status_code < 300 or 400 <= r.status_code < 500


# --------------------------------------------------------------------------- forms


@dataclass
class Form:
    action: str
    method: str
    fields: list[tuple[str, str, str]] = field(default_factory=list)  # (name, type, default)


class _Forms(HTMLParser):
    """Every <form> on a page with its named inputs, selects and textareas and their defaults."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._select: str | None = None
        self._select_value: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(a.get("action", ""), a.get("method", "get").lower()))
        elif not self.forms:
            return
        elif tag == "input" and a.get("name"):
            kind = a.get("type", "text").lower()
            if kind in ("checkbox", "radio") and "checked" not in a:
                self.forms[-1].fields.append((a["name"], kind, ""))
            elif kind != "submit":
                self.forms[-1].fields.append((a["name"], kind, a.get("value", "")))
        elif tag == "button" and a.get("name"):
            self.forms[-1].fields.append((a["name"], "button", a.get("value", "")))
        elif tag == "select":
            self._select, self._select_value = a.get("name"), None
        elif tag == "option" and self._select is not None:
            if self._select_value is None or "selected" in a:
                self._select_value = a.get("value", "")
        elif tag == "textarea":
            self._textarea = a.get("name")
            self.forms[-1].fields.append((a.get("name", ""), "textarea", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "select" and self._select and self.forms:
            self.forms[-1].fields.append((self._select, "select", self._select_value or ""))
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def forms_of(html: str) -> list[Form]:
    p = _Forms()
    p.feed(html)
    return p.forms


_seq = iter(range(1, 1_000_000))


def _base_value(name: str, kind: str, default: str) -> str:
    """A valid value for a field the page leaves empty, so each attempt varies one field only."""
    if default:
        return default
    n = next(_seq)
    today = datetime.now(UTC).date().isoformat()
    fill = {"mrn": f"HOSTILE-{n}", "username": f"hostile{n}", "device_id": f"dev-hostile-{n}",
            "display_name": "Hostile Test", "state": "NY", "password": "a long enough password",
            "name": f"token {n}", "version": "v1", "license_number": f"L-{n}", "icd10_codes": "I10",
            "determination": "reviewed", "action": "called patient", "minutes": "5", "note": "ok"}
    if name in fill:
        return fill[name]
    return {"date": today, "number": "1"}.get(kind, "")


PAGES = {  # role -> pages whose forms that role uses
    "nurse": ["/queue", "/flags/{f}", "/patients/{p}", "/account"],
    "clinician": ["/flags/{f}/review", "/flags/{f}", "/patients/{p}/access"],
    "admin": ["/admin/patients", "/admin/users", "/admin"],
    "billing": ["/billing", "/account"],
}


def _discover(sessions: dict[str, httpx.Client], base: str, w: World) -> list[tuple[str, Form]]:
    seen: set[tuple[str, str, tuple[str, ...]]] = set()
    found: list[tuple[str, Form]] = []
    with httpx.Client(base_url=base, timeout=20) as anon:
        pages = [("anonymous", forms_of(anon.get("/login").text))]
    for role, paths in PAGES.items():
        for path in paths:
            url = path.format(f=w.flag_id, p=w.patient_id)
            r = sessions[role].get(url)
            assert r.status_code == 200, (role, path, r.status_code)
            forms = forms_of(r.text)
            for form in forms:
                form.action = form.action or url  # a form without an action submits to its page
            pages.append((role, forms))
    for role, forms in pages:
        for form in forms:
            key = (form.method, form.action, tuple(sorted(n for n, _, _ in form.fields)))
            if form.action == "/logout" or key in seen:
                continue
            seen.add(key)
            found.append((role, form))
    return found


def _submit_form(client: httpx.Client, form: Form, values: list[tuple[str, str]], role: str,
                 w: World) -> httpx.Response:
    if role == "anonymous":  # the sign-in form's token is bound to its cookie: fetch a fresh one
        token = csrf_of(client.get("/login").text)
        values = [(k, token if k == "csrf_token" else v) for k, v in values]
        client.cookies.delete("rpmflow_session")  # each attempt signs in afresh
    if form.method == "get":
        return client.get(form.action or "/", params=urlencode(values), follow_redirects=False)
    return client.post(form.action, content=urlencode(values), headers=FORM, follow_redirects=False)


def test_injection_through_every_form_field(
    sessions: dict[str, httpx.Client], base: str, module_world: World, module_db_url: str
) -> None:
    before = _counts(module_db_url)
    forms = _discover(sessions, base, module_world)
    kinds = {f.action.split("/")[1] if f.action else "" for _, f in forms}
    assert {"login", "account", "admin", "flags", "queue"} <= kinds, kinds
    attempts: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    anon = httpx.Client(base_url=base, timeout=20)
    try:
        for role, form in forms:
            client = anon if role == "anonymous" else sessions[role]
            login = ({"username": module_world.usernames["nurse"], "password": PASSWORD}
                     if role == "anonymous" else {})
            fuzzable = [n for n, kind, _ in form.fields if n != "csrf_token" and kind != "button"]
            for target in dict.fromkeys(fuzzable):
                for payload in PAYLOADS:
                    values = [(n, payload if n == target else login.get(n) or _base_value(n, kind, d))
                              for n, kind, d in form.fields if n != target or kind not in ("checkbox",)]
                    if not any(n == target for n, _ in values):
                        values.append((target, payload))
                    r = _submit_form(client, form, values, role, module_world)
                    attempts[f"{form.method.upper()} {form.action or '(self)'} as {role}"] += 1
                    statuses[r.status_code] += 1
                    if not _ok_status(r, sign_in_form=role == "anonymous"):
                        failures.append(f"{form.action} {target}={payload[:40]!r}: {r.status_code}"
                                        f" {r.text[:200]}")
    finally:
        anon.close()
    _report("form", attempts, statuses)
    assert failures == []
    assert statuses[303] > 20 and statuses[422] > 100, statuses  # some stored, most refused
    assert sum(attempts.values()) >= 150
    _assert_stored_safely(module_db_url, before)
    _assert_rendered_escaped(sessions, module_world, must_show=True)


# --------------------------------------------------------------------------- API


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[1]
        node = schema["components"]["schemas"][name]
    return node


def _example(schema: dict[str, Any], node: dict[str, Any]) -> Any:
    node = _resolve(schema, node)
    for alt in node.get("anyOf", []):
        alt = _resolve(schema, alt)
        if alt.get("type") != "null":
            return _example(schema, alt)
    if "enum" in node:
        return node["enum"][0]
    kind = node.get("type")
    if kind == "array":
        return [_example(schema, node.get("items", {}))]
    if kind == "integer":
        return 1
    if kind == "boolean":
        return False
    if kind == "object":
        return {k: _example(schema, v) for k, v in node.get("properties", {}).items()}
    fmt = node.get("format")
    if fmt == "date":
        return datetime.now(UTC).date().isoformat()
    if fmt == "date-time":
        return datetime.now(UTC).isoformat()
    return "text"


def test_injection_through_every_api_parameter(
    base: str, tokens: dict[str, str], sessions: dict[str, httpx.Client], module_world: World,
    module_db_url: str,
) -> None:
    before = _counts(module_db_url)
    schema = httpx.get(f"{base}/openapi.json", headers={"Authorization": f"Bearer {tokens['admin']}"}).json()
    w = module_world
    real = {"flag_id": w.flag_id, "patient_id": w.patient_id, "year": 2026, "month": 1}
    attempts: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    with httpx.Client(base_url=base, timeout=20) as client:
        for path, ops in schema["paths"].items():
            for method, op in ops.items():
                if path == "/events/flags":
                    continue  # an endless stream; its input is covered by test_sse and the role matrix
                roles = POLICY.get((method.upper(), path), ANY)
                role = "clinician" if "clinician" in roles else sorted(roles)[0]
                headers = {"Authorization": f"Bearer {tokens[role]}"}
                params = op.get("parameters", [])
                body_schema = (op.get("requestBody", {}).get("content", {})
                               .get("application/json", {}).get("schema"))
                body = _example(schema, body_schema) if body_schema else None
                props = _resolve(schema, body_schema).get("properties", {}) if body_schema else {}
                targets = [(p["in"], p["name"]) for p in params] + [("body", k) for k in props]
                targets.append(("query", "unexpected"))  # a parameter the operation does not declare
                for where, name in targets:
                    for payload in PAYLOADS:
                        path_values = {p["name"]: str(real.get(p["name"], 1))
                                       for p in params if p["in"] == "path"}
                        query: dict[str, str] = {}
                        sent = dict(body) if isinstance(body, dict) else body
                        if where == "path":
                            path_values[name] = quote(payload, safe="")
                        elif where == "query":
                            query[name] = payload
                        elif isinstance(sent, dict):
                            is_array = _resolve(schema, props[name]).get("type") == "array"
                            sent[name] = [payload] if is_array else payload
                        url = path.format(**path_values)
                        r = client.request(method.upper(), url, params=query, headers=headers,
                                           json=sent if body_schema else None)
                        attempts[f"{method.upper()} {path}"] += 1
                        statuses[r.status_code] += 1
                        if not _ok_status(r) or r.status_code == 303:
                            failures.append(f"{method} {path} {where}:{name}={payload[:40]!r}:"
                                            f" {r.status_code} {r.text[:200]}")
    _report("API", attempts, statuses)
    assert failures == []
    assert statuses[200] > 20 and statuses[422] > 100, statuses
    assert len(attempts) >= 12 and sum(attempts.values()) >= 150
    _assert_stored_safely(module_db_url, before)
    _assert_rendered_escaped(sessions, module_world, must_show=False)


def _report(surface: str, attempts: Counter[str], statuses: Counter[int]) -> None:
    print(f"\n{surface} injection attempts: {sum(attempts.values())} over {len(attempts)} {surface}s;"
          f" statuses {dict(sorted(statuses.items()))}")
    for name, n in sorted(attempts.items()):
        print(f"  {n:4d}  {name}")


def _assert_stored_safely(url: str, before: dict[str, int]) -> None:
    """Tables intact, frozen tables untouched, none shrank; stored payloads are stored whole.

    A text column holding a payload marker must hold a whole payload (alone, or quoted inside
    text the app composed, such as a symptom-check note): never a truncated or altered one.
    """
    after = _counts(url)
    assert set(after) == set(before), f"tables changed: {set(before) ^ set(after)}"
    for table in FROZEN:
        assert after[table] == before[table], (table, before[table], after[table])
    shrunk = {t: (before[t], after[t]) for t in before if after[t] < before[t]}
    assert not shrunk, shrunk
    allowed = set(PAYLOADS) | {"Hostile Test"}
    odd: list[str] = []
    with psycopg.connect(url, autocommit=True) as conn:
        cols = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'"
            " AND data_type IN ('text', 'character varying')").fetchall()
        for table, column in cols:
            for (value,) in conn.execute(
                f'SELECT DISTINCT "{column}" FROM "{table}" WHERE ' + " OR ".join(
                    [f'strpos("{column}", %s) > 0'] * len(MARKERS)), MARKERS).fetchall():
                if value not in allowed and not any(p in value for p in PAYLOADS):  # e.g. a note quoted
                    odd.append(f"{table}.{column} = {value[:80]!r}")
    assert not odd, f"stored text that is not exactly what was sent: {odd}"


def _assert_rendered_escaped(sessions: dict[str, httpx.Client], w: World, *, must_show: bool) -> None:
    pages = {"nurse": ["/queue", f"/flags/{w.flag_id}", f"/patients/{w.patient_id}", "/account"],
             "clinician": [f"/flags/{w.flag_id}/review", f"/patients/{w.patient_id}/access"],
             "admin": ["/admin/patients", "/admin/users", "/admin/intake", "/admin/audit", "/admin"],
             "billing": ["/billing", "/account"]}
    shown = 0
    for role, paths in pages.items():
        for path in paths:
            r = sessions[role].get(path)
            assert r.status_code == 200, (role, path, r.status_code)
            for raw in RAW_XSS:
                assert raw not in r.text, f"unescaped {raw!r} on {path}"
            shown += r.text.count("&lt;script&gt;alert(1)&lt;/script&gt;")
            assert "{{7*7}}" not in r.text or "49" not in r.text.split("{{7*7}}")[0][-3:]
    if must_show:  # the forms stored the payload somewhere a page shows it: escaped, not absent
        assert shown > 0


# --------------------------------------------------------------------------- another role's data

PATIENT_ROUTES = sorted(k for k, roles in POLICY.items()
                        if k[0] == "GET" and roles != ANY and k[1] != "/events/flags")
ROLE_CASES = [(path, role) for _, path in PATIENT_ROUTES
              for role in ROLES if role not in POLICY[("GET", path)]]


@pytest.mark.parametrize(("path", "role"), ROLE_CASES, ids=[f"{p} {r}" for p, r in ROLE_CASES])
def test_other_roles_get_403_and_no_patient_data(
    path: str, role: str, sessions: dict[str, httpx.Client], tokens: dict[str, str], module_world: World,
    module_db_url: str,
) -> None:
    w = module_world
    with psycopg.connect(module_db_url) as conn:
        mrn = conn.execute("SELECT mrn FROM patients WHERE patient_id = %s", (w.patient_id,)).fetchone()
    assert mrn is not None
    secrets_ = (w.patient_name, str(mrn[0]), w.bp_device)
    url = path.format(flag_id=w.flag_id, patient_id=w.patient_id, year=2026, month=1)
    for via, r in (("session", sessions[role].get(url, follow_redirects=False)),
                   ("token", httpx.get(sessions[role].base_url.join(url),
                                       headers={"Authorization": f"Bearer {tokens[role]}"}, timeout=20))):
        assert r.status_code == 403, (via, r.status_code, r.text[:200])
        leaked = [s for s in secrets_ if s in r.text]
        assert not leaked, f"{via} 403 body of {url} shows {leaked}"


def test_patient_data_is_what_the_403_check_looks_for(
    sessions: dict[str, httpx.Client], module_world: World
) -> None:
    """The control: the allowed role does see the strings the refusals must not show."""
    page = sessions["nurse"].get(f"/patients/{module_world.patient_id}")
    assert page.status_code == 200 and module_world.patient_name in page.text
    assert module_world.bp_device in page.text


# --------------------------------------------------------------------------- oversized requests


def _raw(port: int, data: bytes, deadline: float = 10.0) -> bytes:
    """Send ``data`` and read until the server closes or a full response head with body arrives."""
    got = b""
    with socket.create_connection(("127.0.0.1", port), timeout=deadline) as s:
        s.sendall(data)
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            got += chunk
            head, sep, rest = got.partition(b"\r\n\r\n")
            length = [int(line.split(b":")[1]) for line in head.lower().split(b"\r\n")
                      if line.startswith(b"content-length:")]
            if sep and length and len(rest) >= length[0]:
                break
    return got


def test_declared_body_over_the_limit_is_refused_before_it_is_sent(
    port: int, tokens: dict[str, str], module_world: World
) -> None:
    head = (f"POST /api/flags/{module_world.flag_id}/events HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {tokens['nurse']}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {50 * 1024 * 1024}\r\n\r\n").encode()
    reply = _raw(port, head)
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]


def test_bodies_over_the_limit_get_413(
    base: str, tokens: dict[str, str], sessions: dict[str, httpx.Client], module_world: World,
    module_db_url: str,
) -> None:
    before = _counts(module_db_url)
    url = f"/api/flags/{module_world.flag_id}/events"
    auth = {"Authorization": f"Bearer {tokens['nurse']}", "Content-Type": "application/json"}
    big = b'{"event": "annotate", "note": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    with httpx.Client(base_url=base, timeout=20) as c:
        declared = c.post(url, content=big, headers=auth)
        assert declared.status_code == 413, declared.text[:200]

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
            yield b'{"event": "annotate", "note": "'
            for _ in range(40):
                yield b"y" * 65536
            yield b'"}'

        streamed = c.post(url, content=chunks(), headers=auth)
        assert streamed.status_code == 413, streamed.text[:200]
        assert "content-length" not in streamed.request.headers
        small = c.post(url, content=iter([b'{"event": "annotate",', b' "note": "chunked ok"}']), headers=auth)
        assert small.status_code in (200, 409), small.text[:200]  # a small chunked body still works
    form = sessions["nurse"].post("/account/tokens", follow_redirects=False,
                                  data={"csrf_token": "x", "name": "n" * (2 * 1024 * 1024)})
    assert form.status_code == 413
    after = _counts(module_db_url)
    assert after["api_tokens"] == before["api_tokens"]
    assert sessions["nurse"].get("/api/me").status_code == 200  # the session survived


def test_form_with_ten_thousand_fields_is_refused(
    sessions: dict[str, httpx.Client], module_db_url: str
) -> None:
    admin = sessions["admin"]
    token = csrf_of(admin.get("/admin/patients").text)
    before = _counts(module_db_url)["patients"]
    fields = [("csrf_token", token), ("mrn", "MANY-1"), ("display_name", "Many"), ("state", "NY")]
    fields += [(f"f{i}", "x") for i in range(10_000)]
    r = admin.post("/admin/patients", content=urlencode(fields), headers=FORM, follow_redirects=False)
    assert r.status_code == 400, (r.status_code, r.text[:200])
    repeated = urlencode(fields[:4] + [("f", "x")] * 10_000)
    r = admin.post("/admin/patients", content=repeated, headers=FORM, follow_redirects=False)
    assert r.status_code == 400, (r.status_code, r.text[:200])
    assert _counts(module_db_url)["patients"] == before
    assert admin.get("/admin").status_code == 200


@pytest.mark.parametrize(("what", "size"), [("query", 100_000), ("header", 64_000), ("headers", 600)])
def test_huge_heads_get_4xx(port: int, base: str, tokens: dict[str, str], what: str, size: int) -> None:
    auth = f"Authorization: Bearer {tokens['nurse']}\r\n"
    if what == "query":
        head = f"GET /api/queue?rule={'a' * size} HTTP/1.1\r\nHost: x\r\n{auth}\r\n"
    elif what == "header":
        head = f"GET /api/queue HTTP/1.1\r\nHost: x\r\n{auth}X-Big: {'b' * size}\r\n\r\n"
    else:
        many = "".join(f"X-H{i}: {'c' * 40}\r\n" for i in range(size))
        head = f"GET /api/queue HTTP/1.1\r\nHost: x\r\n{auth}{many}\r\n"
    reply = _raw(port, head.encode())
    assert reply.startswith(b"HTTP/1.1 4"), reply[:200]
    status_line = reply.split(b"\r\n", 1)[0].decode()
    print(f"\n{what} of {len(head)} bytes: {status_line}")
    # Just under the h11 limit, the same shapes are judged by the app (a 4xx for a bad filter, no 5xx).
    r = httpx.get(f"{base}/api/queue", params={"rule": "a" * 8000},
                  headers={"Authorization": f"Bearer {tokens['nurse']}"}, timeout=20)
    assert r.status_code == 422
    assert httpx.get(f"{base}/healthz", timeout=20).status_code == 200


# --------------------------------------------------------------------------- slow requests


@dataclass
class _Attacker:
    """A slow-loris client: a request head trickled one header line at a time, never finished."""

    port: int
    trickle: bool = True
    opened: threading.Event = field(default_factory=threading.Event)
    closed_after: float | None = None
    reply: bytes = b""

    def run(self) -> None:
        give_up = HEAD_TIMEOUT + 10
        with socket.create_connection(("127.0.0.1", self.port), timeout=give_up) as s:
            s.settimeout(0.2)  # paces the trickle: one header line per 0.2 s unless the server answers
            start = time.monotonic()
            try:
                if self.trickle:
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                self.opened.set()
                while time.monotonic() - start < give_up:
                    if self.trickle:
                        s.sendall(b"X-Slow: 1\r\n")
                    try:
                        chunk = s.recv(4096)
                    except TimeoutError:
                        continue
                    if not chunk:
                        break
                    self.reply += chunk
            except (BrokenPipeError, ConnectionResetError):
                pass
            finally:
                self.opened.set()
                self.closed_after = time.monotonic() - start


def test_slow_loris_is_cut_off_while_others_are_served(
    port: int, base: str, tokens: dict[str, str]
) -> None:
    attackers = [_Attacker(port) for _ in range(20)] + [_Attacker(port, trickle=False) for _ in range(5)]
    threads = [threading.Thread(target=a.run, daemon=True) for a in attackers]
    for t in threads:
        t.start()
    wait_for(lambda: all(a.opened.is_set() for a in attackers), 5, "slow clients to connect")
    started = time.monotonic()
    with httpx.Client(base_url=base, timeout=5) as c:
        for _ in range(5):
            assert c.get("/api/me", headers={"Authorization": f"Bearer {tokens['nurse']}"}).status_code == 200
            assert c.get("/login").status_code == 200
    served_in = time.monotonic() - started
    assert served_in < HEAD_TIMEOUT and all(a.closed_after is None for a in attackers), served_in
    wait_for(lambda: all(a.closed_after is not None for a in attackers), HEAD_TIMEOUT + 5,
             "the server to close every slow connection")
    for t in threads:
        t.join(timeout=2)
    for a in attackers:
        assert a.closed_after is not None and HEAD_TIMEOUT * 0.8 <= a.closed_after <= HEAD_TIMEOUT + 3, a
        assert a.reply.startswith(b"HTTP/1.1 408"), a.reply[:100]
    closed = [a.closed_after or 0.0 for a in attackers]
    print(f"\nslow loris: {len(attackers)} slow connections closed after {min(closed):.2f}-{max(closed):.2f}"
          f" s (head timeout {HEAD_TIMEOUT} s); 10 normal requests served in {served_in:.2f} s meanwhile")


def test_idle_kept_alive_connection_is_closed(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=KEEP_ALIVE + 5) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        start = time.monotonic()
        got = b""
        while chunk := s.recv(4096):
            got += chunk
        idle = time.monotonic() - start
    assert got.startswith(b"HTTP/1.1 200"), got[:100]
    assert b"HTTP/1.1 408" not in got  # the head timer was disarmed once the head arrived
    assert idle <= KEEP_ALIVE + 2, idle
