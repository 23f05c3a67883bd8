"""The fenced shell blocks (`sh`, `bash`, `console`, `shell`) of the repository's documents, found the way a
reader sees them: each block is named by its document and its first line."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = (
    "README.md",
    "docs/*.md",
    "infra/README.md",
    "templates/README.md",
    "emulator/README.md",
    "bench/README.md",
)
FENCE = re.compile(r"^```(sh|bash|console|shell)[ \t]*\n(.*?)^```", re.DOTALL | re.MULTILINE)


@dataclass(frozen=True)
class Block:
    document: str
    line: int
    first: str  # the first line, stripped: what the registry of tests/test_doc_blocks.py names it by
    text: str


def documents() -> list[Path]:
    return sorted({path for pattern in DOCUMENTS for path in ROOT.glob(pattern)})


def blocks(document: Path) -> list[Block]:
    text = document.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        body = match.group(2)
        first = next((line.strip() for line in body.splitlines() if line.strip()), "")
        line = text.count("\n", 0, match.start()) + 1
        found.append(Block(str(document.relative_to(ROOT)), line, first, body))
    return found


def block(document: str, starting: str) -> Block:
    """The one block of `document` whose first line starts with `starting`."""
    [found] = [b for b in blocks(ROOT / document) if b.first.startswith(starting)]
    return found
