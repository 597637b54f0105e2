"""Field readers of the reference validator: each checks one field and names its path in the error.

The reasons raised here are dead-letter reasons, a public interface (docs/wire-format.md): their
wording must not change. Pure: no clock, no I/O.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any, Final

from ingest.errors import ContractViolation

MISSING: Final = object()
_ZERO: Final = timedelta(0)


def get(obj: dict[str, Any], key: str, path: str, *, required: bool) -> Any:
    """``obj[key]``, or :data:`MISSING` when absent and optional."""
    if key not in obj:
        if required:
            raise ContractViolation(f"missing required field {path}{key}")
        return MISSING
    return obj[key]


def type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def text(obj: dict[str, Any], key: str, path: str = "", *, required: bool = True,
         nullable: bool = False) -> str | None:
    value = get(obj, key, path, required=required)
    if value is MISSING or (value is None and nullable):
        return None
    if not isinstance(value, str):
        want = "string or null" if nullable else "string"
        raise ContractViolation(f"{path}{key} must be a {want}, got {type_name(value)}")
    return value


def number(obj: dict[str, Any], key: str, path: str = "", *, required: bool = False) -> float | None:
    value = get(obj, key, path, required=required)
    if value is MISSING or value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ContractViolation(f"{path}{key} must be a number or null, got {type_name(value)}")
    if not math.isfinite(value):
        raise ContractViolation(f"{path}{key} must be finite, got {value!r}")
    return float(value)


def integer(obj: dict[str, Any], key: str, lo: int, hi: int, *, required: bool) -> int | None:
    value = get(obj, key, "", required=required)
    if value is MISSING or value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ContractViolation(f"{key} must be an integer or null, got {type_name(value)}")
    if not lo <= value <= hi:
        raise ContractViolation(f"{key} must be in {lo}..{hi}, got {value}")
    return value


def mapping(obj: dict[str, Any], key: str, *, required: bool, nullable: bool) -> dict[str, Any] | None:
    value = get(obj, key, "", required=required)
    if value is MISSING or (value is None and nullable):
        return None
    if not isinstance(value, dict):
        want = "object or null" if nullable else "object"
        raise ContractViolation(f"{key} must be an {want}, got {type_name(value)}")
    return value


def utc_time(obj: dict[str, Any], key: str) -> datetime:
    value = text(obj, key)
    assert value is not None
    if not (value.endswith("Z") or value.endswith("+00:00")) or "T" not in value:
        raise ContractViolation(f"{key} must be UTC ISO 8601 ending in Z or +00:00, got {value[:64]!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ContractViolation(f"{key} is not a valid ISO 8601 time: {value[:64]!r}") from None
    if parsed.utcoffset() != _ZERO:
        raise ContractViolation(f"{key} must be UTC, got offset {parsed.utcoffset()}")
    return parsed


def local_time(obj: dict[str, Any], key: str) -> str | None:
    value = text(obj, key, nullable=True)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ContractViolation(f"{key} is not a valid ISO 8601 time: {value[:64]!r}") from None
    if parsed.tzinfo is not None or "T" not in value:
        raise ContractViolation(f"{key} must be an ISO 8601 date-time without zone, got {value[:64]!r}")
    return value


def choice(obj: dict[str, Any], key: str, allowed: frozenset[str], default: str | None) -> str:
    value = text(obj, key, required=default is None)
    if value is None:
        assert default is not None
        return default
    if value not in allowed:
        raise ContractViolation(f"{key} must be one of {sorted(allowed)}, got {value[:64]!r}")
    return value
