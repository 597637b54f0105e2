"""The docs' settings tables, generated from the settings dataclasses.

``python -m tests.settings_tables`` rewrites each ``<!-- settings:NAME -->`` block in the docs;
tests/test_settings_docs.py fails when a block differs from what this renders.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from dashboards.settings import Settings as DashboardSettings
from gateway.runtime.settings import markdown_table
from gateway.settings import Settings as GatewaySettings
from ingest.settings import Settings as IngestSettings
from triage.settings import Settings as TriageSettings

ROOT = Path(__file__).resolve().parents[1]
TABLES: dict[str, tuple[str, type[Any]]] = {
    "gateway": ("docs/gateway.md", GatewaySettings),
    "ingest": ("docs/ingest.md", IngestSettings),
    "triage": ("docs/triage.md", TriageSettings),
    "dashboard": ("docs/dashboard.md", DashboardSettings),
}


def render(cls: type[Any]) -> str:
    return markdown_table(cls)


def block(name: str, cls: type[Any]) -> str:
    return f"<!-- settings:{name} -->\n{render(cls)}\n<!-- /settings:{name} -->"


def rewrite() -> list[str]:
    changed = []
    for name, (doc, cls) in TABLES.items():
        path = ROOT / doc
        text = path.read_text()
        pattern = re.compile(rf"<!-- settings:{name} -->\n.*?<!-- /settings:{name} -->", re.S)
        replacement = block(name, cls)
        match = pattern.search(text)
        new = text[:match.start()] + replacement + text[match.end():] if match else text
        if new != text:
            path.write_text(new)
            changed.append(doc)
    return changed


if __name__ == "__main__":
    print("\n".join(rewrite()) or "up to date")
