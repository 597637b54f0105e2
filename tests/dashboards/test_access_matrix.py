"""Every protected route × every role (plus anonymous): the policy table is what the server enforces;
and every route naming a patient or a flag × nurse and clinician against a patient outside their
care teams: refused, audited, break-glass offered."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import psycopg
import pytest

from dashboards.app import create_app, route_keys
from dashboards.policy import POLICY, PUBLIC, ROLES, SCOPE_EXEMPT
from simulators.embedded_postgres import DatabaseUrls
from tests.dashboards.conftest import settings_for
from tests.dashboards.live import serve, session_csrf, sign_in
from tests.dashboards.seed import World, add_flag
from triage.clinical import people

MISSING = 999_999_999  # ids no row has: allowed POSTs then fail with 404/422 instead of changing data


@pytest.fixture(scope="module")
def server(module_db_urls: DatabaseUrls, module_world: World) -> Iterator[str]:
    with serve(create_app(settings_for(module_db_urls.dashboard))) as url:
        yield url


@pytest.fixture(scope="module")
def clients(server: str, module_world: World) -> Iterator[dict[str, httpx.Client]]:
    out: dict[str, httpx.Client] = {"anonymous": httpx.Client(base_url=server, timeout=20)}
    for role in ROLES:
        c = httpx.Client(base_url=server, timeout=20)
        assert sign_in(c, module_world.usernames[role]).status_code == 303
        c.headers["X-CSRF-Token"] = session_csrf(c)  # so POSTs are judged on role, not on CSRF
        out[role] = c
    yield out
    for c in out.values():
        c.close()


def _url(path: str, method: str, w: World) -> str:
    real = method == "GET"
    values = {
        "flag_id": w.flag_id if real else MISSING,
        "patient_id": w.patient_id if real else MISSING,
        "user_id": MISSING,
        "token_id": MISSING,
        "team_id": MISSING,
        "year": 2026,
        "month": 1,
    }
    return path.format(**values)


CASES = [(m, p, role) for (m, p) in sorted(POLICY) for role in (*ROLES, "anonymous")]


def test_every_route_has_a_policy_and_every_policy_a_route() -> None:
    app = create_app(settings_for("postgresql://unused/unused"))
    keys = set(route_keys(app))
    assert set(POLICY) <= keys, f"policy entries without a route: {set(POLICY) - keys}"
    assert keys <= set(POLICY) | PUBLIC


@pytest.mark.parametrize(("method", "path", "role"), CASES, ids=[f"{m} {p} {r}" for m, p, r in CASES])
def test_route_role(
    method: str, path: str, role: str, clients: dict[str, httpx.Client], module_world: World
) -> None:
    url = _url(path, method, module_world)
    client = clients[role]
    if path == "/logout" and role != "anonymous":
        with httpx.Client(base_url=str(client.base_url), timeout=20) as own:  # a throwaway session to end
            assert sign_in(own, module_world.usernames[role]).status_code == 303
            own.headers["X-CSRF-Token"] = session_csrf(own)
            assert own.post("/logout").headers["location"] == "/login"
            assert own.get("/account").headers["location"].startswith("/login")  # the session is over
        return
    if path == "/events/flags":
        with client.stream("GET", url, params={"after": 0}) as r:
            status = r.status_code
            location = r.headers.get("location", "")
    else:
        r = client.request(method, url, follow_redirects=False)
        status, location = r.status_code, r.headers.get("location", "")
    if role == "anonymous":
        if path.startswith(("/api/", "/events/")):
            assert status == 401
        else:
            assert status == 303 and location.startswith("/login"), (status, location)
    elif role in POLICY[(method, path)]:
        assert status not in (401, 403), (status, r.text[:300])
        assert not location.startswith("/login")
        assert status < 500
    else:
        assert status == 403, (status, r.text[:300])


# --- care-team scoping: a nurse or clinician naming a patient outside their teams is refused -------

@pytest.fixture(scope="module")
def outsider(module_db_url: str, module_world: World) -> dict[str, int]:
    """A patient with a flag in no care team of the module's users."""
    with psycopg.connect(module_db_url, autocommit=True) as db:
        pid = people.create_patient(db, mrn="MRN-OUTSIDE", display_name="Outside Patient", state="NY")
        flag = add_flag(db, module_world, patient_id=pid, reading_ids=[])
    return {"patient_id": pid, "flag_id": flag}


SCOPED_CASES = [(m, p, role) for (m, p) in sorted(POLICY) if ("{patient_id}" in p or "{flag_id}" in p)
                and (m, p) not in SCOPE_EXEMPT for role in ("nurse", "clinician") if role in POLICY[(m, p)]]


@pytest.mark.parametrize(("method", "path", "role"), SCOPED_CASES,
                         ids=[f"{m} {p} {r}" for m, p, r in SCOPED_CASES])
def test_a_patient_outside_the_care_teams_is_refused(
    method: str, path: str, role: str, clients: dict[str, httpx.Client], outsider: dict[str, int],
    module_db_url: str,
) -> None:
    url = path.format(year=2026, month=1, **outsider)
    r = clients[role].request(method, url, follow_redirects=False)
    assert r.status_code == 403, (r.status_code, r.text[:300])
    assert "Outside Patient" not in r.text and "MRN-OUTSIDE" not in r.text
    if path.startswith("/api/"):
        assert r.json()["break_glass"] == f"/api/patients/{outsider['patient_id']}/break-glass"
    elif method == "GET":
        assert 'id="break-glass"' in r.text  # the humane page offers break-glass
    with psycopg.connect(module_db_url) as db:
        refused = db.execute("SELECT count(*) FROM audit_log WHERE action = 'access.refused_out_of_scope'"
                             " AND patient_id = %s AND detail->>'path' = %s",
                             (outsider["patient_id"], url)).fetchone()
    assert refused is not None and refused[0] >= 1


@pytest.mark.parametrize("role", ["billing", "admin"])
def test_billing_and_admin_are_not_scoped(role: str, clients: dict[str, httpx.Client],
                                          outsider: dict[str, int]) -> None:
    pid = outsider["patient_id"]
    path = {"billing": f"/api/patients/{pid}/billing-facts", "admin": f"/api/patients/{pid}/access"}[role]
    assert clients[role].get(path).status_code == 200
