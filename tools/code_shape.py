"""The shape `make lint` holds the product to: no module in transfer/ over 400 lines, no function in
transfer/ or function_app.py over 60 lines or above cyclomatic complexity 15 as radon measures it.

    python tools/code_shape.py            # prints the figures, exits 1 on any breach
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from radon.complexity import cc_visit
from radon.visitors import Function

ROOT = Path(__file__).resolve().parent.parent
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
MAX_COMPLEXITY = 15


def sources() -> list[Path]:
    return [*sorted((ROOT / "transfer").rglob("*.py")), ROOT / "function_app.py"]


def breaches(path: Path) -> tuple[list[str], dict[str, tuple[int, str]]]:
    """What `path` breaks, and its largest figures: {"module"|"function"|"complexity": (value, where)}."""
    text = path.read_text(encoding="utf-8")
    name = path.relative_to(ROOT).as_posix()
    found: list[str] = []
    lines = len(text.splitlines())
    figures = {"module": (lines, name), "function": (0, name), "complexity": (0, name)}
    if name.startswith("transfer/") and lines > MAX_MODULE_LINES:
        found.append(f"{name}: {lines} lines (at most {MAX_MODULE_LINES})")
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            where = f"{name}:{node.lineno} {node.name}"
            figures["function"] = max(figures["function"], (length, where))
            if length > MAX_FUNCTION_LINES:
                found.append(f"{where}: {length} lines (at most {MAX_FUNCTION_LINES})")
    for block in cc_visit(text):
        if not isinstance(block, Function):  # a class's figure is its methods'
            continue
        where = f"{name}:{block.lineno} {block.fullname}"
        figures["complexity"] = max(figures["complexity"], (block.complexity, where))
        if block.complexity > MAX_COMPLEXITY:
            found.append(f"{where}: complexity {block.complexity} (at most {MAX_COMPLEXITY})")
    return found, figures


def main() -> int:
    problems: list[str] = []
    largest: dict[str, tuple[int, str]] = {}
    for path in sources():
        found, figures = breaches(path)
        problems += found
        for key, value in figures.items():
            largest[key] = max(largest.get(key, (0, "")), value)
    print(
        f"code shape: largest module {largest['module'][0]} lines ({largest['module'][1]}), longest function "
        f"{largest['function'][0]} lines ({largest['function'][1]}), highest complexity "
        f"{largest['complexity'][0]} ({largest['complexity'][1]})"
    )
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
