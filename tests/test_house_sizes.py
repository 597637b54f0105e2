"""Issue 12's size rule, enforced: no module over 400 lines, no function over 60, unless it says why.

A module or function may be longer when a ``# long: <why>`` comment sits on the line above its
``def`` (or, for a module, in its first ten lines): the reason is then read in review, not lost.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("gateway", "ingest", "triage", "dashboards", "simulators")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
MARK = "# long:"


def _modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def _explained(lines: list[str], index: int) -> bool:
    """Whether the line before ``index`` (0-based, skipping decorators) carries the mark."""
    i = index - 1
    while i >= 0 and lines[i].lstrip().startswith("@"):
        i -= 1
    return i >= 0 and MARK in lines[i] and len(lines[i].split(MARK, 1)[1].strip()) > 10


def long_functions(path: Path, root: Path = ROOT) -> list[str]:
    lines = path.read_text().splitlines()
    out = []
    for node in ast.walk(ast.parse("\n".join(lines))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES and not _explained(lines, first - 1):
                out.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({length} lines)")
    return out


def long_module(path: Path) -> str | None:
    lines = path.read_text().splitlines()
    if len(lines) <= MAX_MODULE_LINES or any(MARK in line for line in lines[:10]):
        return None
    return f"{path.relative_to(ROOT)} ({len(lines)} lines)"


def test_no_module_is_longer_than_the_rule_without_saying_why() -> None:
    assert [m for p in _modules() if (m := long_module(p))] == []


def test_no_function_is_longer_than_the_rule_without_saying_why() -> None:
    assert [f for p in _modules() for f in long_functions(p)] == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def f():\n" + "    x = 1\n" * 70, 1),
        ("# long: one table of cases, read top to bottom\ndef f():\n" + "    x = 1\n" * 70, 0),
        ("# long: one table of cases, read top to bottom\n@decorator\ndef f():\n" + "    x = 1\n" * 70, 0),
        ("# long:\ndef f():\n" + "    x = 1\n" * 70, 1),  # a mark without a reason does not count
        ("def f():\n" + "    x = 1\n" * 50, 0),
    ],
)
def test_the_rule_itself(tmp_path: Path, source: str, expected: int) -> None:
    path = tmp_path / "probe.py"
    path.write_text(source)
    assert len(long_functions(path, tmp_path)) == expected
