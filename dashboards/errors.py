"""Dashboard errors, each carrying the HTTP status it becomes at the edge.

    DashboardError
    ├── NotSignedIn        401 (HTML: redirect to /login)
    ├── Forbidden          403 role not allowed, or the lifecycle refused the role
    │   ├── CsrfRejected   403 missing or wrong CSRF token
    │   ├── MfaEnrolmentDue 403 (HTML: redirect to /account/mfa) a second factor must be set up first
    │   └── OutOfCareTeam  403 the patient is not in the user's care teams (break-glass offered)
    ├── NotFound           404
    ├── Conflict           409 illegal transition, or a refusal with reasons
    └── BadInput           422 a form or JSON field the domain code refused

All are terminal for the request: nothing here is retried.
"""

from __future__ import annotations


class DashboardError(Exception):
    status_code = 500

    def __init__(self, message: str, *, reasons: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reasons = reasons or []


class NotSignedIn(DashboardError):
    status_code = 401


class Forbidden(DashboardError):
    status_code = 403


class CsrfRejected(Forbidden):
    pass


class MfaEnrolmentDue(Forbidden):
    pass


class OutOfCareTeam(Forbidden):
    def __init__(self, patient_id: int) -> None:
        super().__init__(f"Patient {patient_id} is not in your care teams. In an emergency you can open the "
                         "record by break-glass: give the reason; it is time-limited, recorded and "
                         "reported to the administrators.")
        self.patient_id = patient_id


class NotFound(DashboardError):
    status_code = 404


class Conflict(DashboardError):
    status_code = 409


class BadInput(DashboardError):
    status_code = 422
