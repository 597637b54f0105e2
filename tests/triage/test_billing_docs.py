"""docs/billing.md's worked example ("Driving billing from code") runs as written."""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any

import psycopg

DOC = Path(__file__).resolve().parents[2] / "docs" / "billing.md"


def _example() -> str:
    text = DOC.read_text(encoding="utf-8")
    m = re.search(r"<!-- example:start -->\s*```python\n(.*?)```\s*<!-- example:end -->", text, re.S)
    assert m, "docs/billing.md lost its worked example"
    return m.group(1)


def test_the_worked_example_runs(db: psycopg.Connection[Any]) -> None:
    tag = secrets.token_hex(3)  # the example's names are fixed; make them unique per run
    code = _example()
    for name in ("DOC-1", "dr-doc", "rn-doc", "cuff-doc"):
        code = code.replace(f'"{name}"', f'"{name}-{tag}"')
    code = code.replace('npi="1234567893"', f'npi="{1000000000 + int(tag, 16) % 8999999999:010d}"')
    scope: dict[str, Any] = {"conn": db}
    exec(compile(code, str(DOC), "exec"), scope)  # noqa: S102 - our own documentation
    assert scope["feb"].payer == "medicare" and scope["mgmt"].rule == "G14"
