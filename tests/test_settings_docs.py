"""The settings tables in the docs are generated from the settings dataclasses and must match
them (regenerate with ``python -m tests.settings_tables``), and README names every variable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.runtime.settings import table
from tests.settings_tables import TABLES, render

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", sorted(TABLES))
def test_doc_table_matches_the_dataclass(name: str) -> None:
    doc, cls = TABLES[name]
    text = (ROOT / doc).read_text()
    match = re.search(rf"<!-- settings:{name} -->\n(.*?)\n<!-- /settings:{name} -->", text, re.S)
    assert match is not None, f"{doc} has no settings:{name} block"
    assert match.group(1) == render(cls), f"{doc} is stale: run python -m tests.settings_tables"


@pytest.mark.parametrize("name", sorted(TABLES))
def test_readme_names_every_variable(name: str) -> None:
    readme = (ROOT / "README.md").read_text()
    _, cls = TABLES[name]
    for env, _flag, _default, _meaning in table(cls):
        primary = env.split(" or ")[0]
        assert primary in readme or _suffix_listed(readme, primary), f"README does not mention {primary}"


def _suffix_listed(readme: str, variable: str) -> bool:
    """README lists each component's variables as ``RPMFLOW_X_`` + ``A``, ``B``, …"""
    for line in readme.splitlines():
        m = re.match(r"\| `(RPMFLOW_[A-Z_]+_)` \+ (.*?) \|", line)
        if m and variable.startswith(m.group(1)):
            names = re.findall(r"`([A-Z0-9_]+)`", m.group(2))
            if variable[len(m.group(1)):] in names:
                return True
    return False
