"""Artifact lists for pipeline runs: parse, validate, normalise, de-duplicate, split. Pure.

Where the caller allows them (`parse_artifacts(..., selectors=True)`), a list may also hold selectors
(`team/*:v1.*`, grammar in transfer/domain/selectors.py), which the service expands through the registry."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from transfer.domain.errors import InvalidInput
from transfer.domain.references import normalise, reason
from transfer.domain.selectors import is_selector
from transfer.domain.selectors import reason as selector_reason

MAX_PER_RUN = 50  # service limit per pipelineRun
MAX_PER_REQUEST = 1000


def parse_artifacts(items: Any, *, target: str = "artifacts", selectors: bool = False) -> list[str]:
    """Validate and normalise a list of references, de-duplicated in order; errors name the index.

    With `selectors`, an item holding a wildcard is a selector (transfer/domain/selectors.py), kept as given;
    without, it is refused as a reference is."""
    if not isinstance(items, list):
        raise InvalidInput("must be a list of artifact references", target=target)
    if not items:
        raise InvalidInput("give at least one artifact", target=target)
    if len(items) > MAX_PER_REQUEST:
        raise InvalidInput(
            f"at most {MAX_PER_REQUEST} artifacts per request, got {len(items)}", target=target
        )
    seen: dict[str, None] = {}
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise InvalidInput("must be a string", target=f"{target}[{index}]")
        wildcard = is_selector(item)
        why = selector_reason(item) if wildcard and selectors else reason(item)
        if why is not None and wildcard and not selectors:
            why += " (a selector such as team/*:v1.* is not accepted here)"
        if why is not None:
            raise InvalidInput(f"{item[:300]!r}: {why}", target=f"{target}[{index}]")
        seen.setdefault(item if wildcard else normalise(item), None)
    return list(seen)


def split(artifacts: Sequence[str], size: int = MAX_PER_RUN) -> list[tuple[str, ...]]:
    """Runs of at most `size` artifacts, in order."""
    return [tuple(artifacts[i : i + size]) for i in range(0, len(artifacts), size)]


def describe(artifacts: Iterable[str], limit: int = 3) -> str:
    items = list(artifacts)
    shown = ", ".join(items[:limit])
    return shown if len(items) <= limit else f"{shown} and {len(items) - limit} more"
