from __future__ import annotations

import pytest

from triage.clinical import icd10


@pytest.mark.parametrize(
    "code,norm",
    [
        ("I10", "I10"),
        ("e11.65", "E11.65"),
        ("R03.0", "R03.0"),
        ("E1165", "E11.65"),
        (" i10 ", "I10"),
        ("O24.410", "O24.410"),
        ("S72.001A", "S72.001A"),
    ],
)
def test_valid_codes_normalise(code: str, norm: str) -> None:
    assert icd10.normalise(code) == norm


@pytest.mark.parametrize("code", ["", "10", "I1", "II0", "I10.", "E11.65432", "E11-65", "1I0", "I10 X"])
def test_malformed_codes_are_refused(code: str) -> None:
    assert not icd10.is_valid(code)
    with pytest.raises(icd10.InvalidICD10):
        icd10.normalise(code)


def test_validate_codes_dedupes_and_refuses_empty() -> None:
    assert icd10.validate_codes(["I10", "i10", "E11.9"]) == ["I10", "E11.9"]
    with pytest.raises(icd10.InvalidICD10):
        icd10.validate_codes([])


def test_common_codes_are_valid_and_described() -> None:
    assert all(icd10.is_valid(c) for c in icd10.COMMON_RPM_CODES)
    assert icd10.describe("i10") == "Essential (primary) hypertension"
    assert icd10.describe("Z99.9") is None
