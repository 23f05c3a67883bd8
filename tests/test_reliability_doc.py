"""docs/reliability.md names a test for each behaviour: every one it names exists, so the table cannot
point at a test that was renamed or removed."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "reliability.md"


def test_every_test_the_reliability_doc_names_exists() -> None:
    named = re.findall(r"(tests/[\w/]+\.py)::(test_\w+)", DOC.read_text(encoding="utf-8"))
    assert len(named) > 60
    defined: dict[str, set[str]] = {}
    for path, name in named:
        if path not in defined:
            tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
            defined[path] = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
        assert name in defined[path], f"{path}::{name}"


def test_the_readme_links_it() -> None:
    assert "(docs/reliability.md)" in (ROOT / "README.md").read_text(encoding="utf-8")
