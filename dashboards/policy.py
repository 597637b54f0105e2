"""Who may call what: the one table mapping every route to the roles allowed on it.

``authorize`` (dashboards/auth.py) looks the matched route up here on every request, and
``create_app`` refuses to start if a route is missing from this table, so a new route is
denied until someone decides who may use it. Minimum necessary (§164.502(b)): billing staff see
codes and reasons but no readings; admins enrol and manage but do not browse readings.
"""

from __future__ import annotations

from typing import Final

NURSE: Final = "nurse"
CLINICIAN: Final = "clinician"
BILLING: Final = "billing"
ADMIN: Final = "admin"
ROLES: Final = (NURSE, CLINICIAN, BILLING, ADMIN)

ANY = frozenset(ROLES)
CARE = frozenset({NURSE, CLINICIAN})
CLIN = frozenset({CLINICIAN})
CLIN_ADM = frozenset({CLINICIAN, ADMIN})  # access transparency: who viewed a patient's data
BILL = frozenset({BILLING})
ADM = frozenset({ADMIN})
# Roles that must pass a second factor (TOTP or a recovery code) before any session: clinicians
# sign billable reviews, billing exports claims, admins manage people. Nurses when a setting says.
MFA_ROLES: Final = frozenset({CLINICIAN, BILLING, ADMIN})
# What a signed-in user who owes an enrolment may reach: the enrolment page and sign-out, nothing else.
MFA_ENROLMENT_ROUTES: Final = frozenset({("GET", "/account/mfa"), ("POST", "/account/mfa/confirm"),
                                         ("POST", "/logout")})

# Routes that name a patient but are not scope-checked: asking for break-glass access itself.
SCOPE_EXEMPT: Final = frozenset({("POST", "/patients/{patient_id}/break-glass"),
                                 ("POST", "/api/patients/{patient_id}/break-glass")})

# Routes anyone may call, signed in or not. No patient data behind any of them.
PUBLIC: Final = frozenset(
    {
        ("GET", "/healthz"),
        ("GET", "/login"),
        ("POST", "/login"),
        ("GET", "/login/second-factor"),  # password passed, code owed: the challenge cookie says who
        ("POST", "/login/second-factor"),
        ("GET", "/static/{path:path}"),
    }
)

POLICY: Final[dict[tuple[str, str], frozenset[str]]] = {
    # any signed-in user
    ("GET", "/"): ANY,
    ("POST", "/logout"): ANY,
    ("GET", "/account"): ANY,
    ("POST", "/account/tokens"): ANY,
    ("POST", "/account/tokens/{token_id}/revoke"): ANY,
    ("GET", "/api/me"): ANY,
    ("GET", "/account/mfa"): ANY,
    ("POST", "/account/mfa/confirm"): ANY,
    ("GET", "/account/preferences"): ANY,  # glucose unit (dashboards/units.py)
    ("POST", "/account/preferences"): ANY,
    ("GET", "/openapi.json"): ANY,  # the API's map is for signed-in users and token holders only
    # triage work: nurses and clinicians
    ("GET", "/queue"): CARE,
    ("GET", "/queue/rows"): CARE,
    ("GET", "/events/flags"): CARE,
    ("GET", "/flags/{flag_id}"): CARE,
    ("POST", "/flags/{flag_id}/events"): CARE,
    ("GET", "/patients/{patient_id}"): CARE,
    ("POST", "/patients/{patient_id}/dry-weight"): CARE,  # the care team's target weight
    ("GET", "/api/queue"): CARE,
    ("GET", "/api/flags/{flag_id}"): CARE,
    ("POST", "/api/flags/{flag_id}/events"): CARE,
    ("POST", "/flags/{flag_id}/symptoms"): CARE,  # AHA crisis symptom check (triage.clinical.symptoms)
    ("POST", "/api/flags/{flag_id}/symptoms"): CARE,
    ("POST", "/flags/{flag_id}/crisis-outcome"): CARE,  # 911 called / loop closed (triage.clinical.crisis)
    ("POST", "/api/flags/{flag_id}/crisis-outcome"): CARE,
    ("GET", "/api/patients/{patient_id}"): CARE,
    ("GET", "/api/patients/{patient_id}/readings"): CARE,
    ("POST", "/patients/{patient_id}/break-glass"): CARE,  # emergency access outside the care team
    ("POST", "/api/patients/{patient_id}/break-glass"): CARE,
    # clinician review and promotion
    ("GET", "/flags/{flag_id}/review"): CLIN,
    ("POST", "/flags/{flag_id}/review"): CLIN,
    ("POST", "/flags/{flag_id}/promote"): CLIN,
    ("POST", "/api/flags/{flag_id}/review"): CLIN,
    ("POST", "/api/flags/{flag_id}/promote"): CLIN,
    # billing
    ("GET", "/billing"): BILL,
    ("GET", "/billing/{year}/{month}.csv"): BILL,
    ("GET", "/billing/{year}/{month}.fhir.json"): BILL,
    ("GET", "/api/billing/{year}/{month}"): BILL,
    # the worklist: billing works it, clinicians read it (no readings in it, no write on it)
    ("GET", "/billing/worklist"): BILL | CLIN,
    ("GET", "/api/billing/worklist/{year}/{month}"): BILL | CLIN,
    # administration
    ("GET", "/admin"): ADM,
    ("GET", "/admin/patients"): ADM,
    ("POST", "/admin/patients"): ADM,
    ("POST", "/admin/patients/{patient_id}/consent"): ADM,
    ("POST", "/admin/patients/{patient_id}/enrol"): ADM,
    ("POST", "/admin/devices/assign"): ADM,
    ("POST", "/admin/devices/end"): ADM,
    ("POST", "/admin/devices/enrol"): ADM,
    ("POST", "/admin/devices/unenrol"): ADM,
    ("GET", "/admin/devices"): ADM,
    ("GET", "/admin/users"): ADM,
    ("POST", "/admin/users"): ADM,
    ("POST", "/admin/users/{user_id}/licenses"): ADM,
    ("POST", "/admin/users/{user_id}/active"): ADM,
    ("POST", "/admin/users/{user_id}/mfa/reset"): ADM,
    ("GET", "/admin/intake"): ADM,
    ("GET", "/admin/care-teams"): ADM,
    ("POST", "/admin/care-teams"): ADM,
    ("POST", "/admin/care-teams/{team_id}/members"): ADM,
    ("POST", "/admin/care-teams/{team_id}/patients"): ADM,
    ("GET", "/api/admin/care-teams"): ADM,
    ("GET", "/api/admin/users"): ADM,
    ("GET", "/api/admin/intake"): ADM,
    # access transparency (DOMAIN F, H11): no readings, only who touched the record
    ("GET", "/patients/{patient_id}/access"): CLIN_ADM,
    ("GET", "/api/patients/{patient_id}/access"): CLIN_ADM,
    ("GET", "/admin/audit"): ADM,
    ("GET", "/api/admin/audit"): ADM,
    # billing facts recorded where people work (dashboards/routes/billing_facts.py)
    ("POST", "/flags/{flag_id}/communications"): CARE,
    ("POST", "/api/flags/{flag_id}/communications"): CARE,
    ("POST", "/patients/{patient_id}/locations"): CARE | ADM,
    ("POST", "/api/patients/{patient_id}/locations"): CARE | ADM,
    ("POST", "/patients/{patient_id}/orders"): CLIN_ADM,
    ("POST", "/api/patients/{patient_id}/orders"): CLIN_ADM,
    ("POST", "/patients/{patient_id}/counted-elsewhere"): CLIN | BILL | ADM,
    ("POST", "/api/patients/{patient_id}/counted-elsewhere"): CLIN | BILL | ADM,
    ("GET", "/api/patients/{patient_id}/billing-facts"): CARE | BILL | ADM,  # no readings in it
}


def requires_mfa(role: str, *, nurses: bool) -> bool:
    """Whether ``role`` must have a confirmed second factor (nurses only when the setting says)."""
    return role in MFA_ROLES or (nurses and role == NURSE)


def allowed_roles(method: str, path: str) -> frozenset[str] | None:
    """Roles allowed on the route template ``path``; None when the route is unknown (deny)."""
    if method == "HEAD":
        method = "GET"
    return POLICY.get((method, path))
