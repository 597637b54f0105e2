"""Dependencies and helpers shared by the route modules."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import Depends, Path

from dashboards.auth import authorize
from dashboards.errors import BadInput, Conflict, Forbidden, NotFound
from dashboards.sessions import Principal
from triage.clinical.icd10 import InvalidICD10
from triage.errors import FlagNotFound, IllegalTransition, RoleNotAllowed, TerminalTriageError, UnknownRole

User = Annotated[Principal, Depends(authorize)]

BIGINT_MAX = 2**63 - 1
FlagId = Annotated[int, Path(ge=1, le=BIGINT_MAX)]
PatientId = Annotated[int, Path(ge=1, le=BIGINT_MAX)]
UserId = Annotated[int, Path(ge=1, le=BIGINT_MAX)]


@contextmanager
def domain_errors() -> Iterator[None]:
    """Translate triage's typed errors into HTTP-shaped ones, at this one edge."""
    try:
        yield
    except (RoleNotAllowed, UnknownRole) as exc:
        raise Forbidden(str(exc)) from exc
    except IllegalTransition as exc:
        raise Conflict(str(exc)) from exc
    except FlagNotFound as exc:
        raise NotFound(str(exc)) from exc
    except (TerminalTriageError, InvalidICD10) as exc:
        # MissingPayload, ReviewRejected, InvalidPerson, UnknownUser...: the input was wrong.
        reasons = [str(r) for r in getattr(exc, "reasons", [])]
        raise BadInput(str(exc), reasons=reasons) from exc
