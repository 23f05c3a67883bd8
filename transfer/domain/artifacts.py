"""Artifact references for pipeline runs: parse, validate, normalise, de-duplicate, split. Pure.

Where the caller allows them (`parse_artifacts(..., selectors=True)`), a list may also hold selectors
(`team/*:v1.*`, grammar in transfer/domain/selectors.py), which the service expands through the registry."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from transfer.domain.errors import InvalidInput

MAX_PER_RUN = 50  # service limit per pipelineRun
MAX_PER_REQUEST = 1000
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
REPOSITORY = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
_MAX_REPOSITORY = 255


def host_reason(repository: str) -> str | None:
    """A repository that starts with a registry host (`myregistry.azurecr.io/...`, `localhost:5000/...`)."""
    first = repository.split("/", 1)[0]
    if "/" in repository and ("." in first or ":" in first or first == "localhost"):
        return "give the repository without a registry host (the pipeline's registry is implied)"
    return None


def _reason(reference: str) -> str | None:
    """Why `reference` is not `repo`, `repo:tag` or `repo@sha256:<64 hex>`; None when it is."""
    if reference != reference.strip() or not reference:
        return "must be a non-empty reference without surrounding spaces"
    repository, at, digest = reference.partition("@")
    tag = None
    if not at:
        head, colon, tail = repository.rpartition(":")
        if colon and "/" not in tail:
            repository, tag = head, tail
    host = host_reason(repository)
    if host is not None:
        return host
    if at and ":" in repository.rsplit("/", 1)[-1]:
        return "use either a tag or a digest, not both"
    if len(repository) > _MAX_REPOSITORY:
        return f"repository names are at most {_MAX_REPOSITORY} characters"
    if not REPOSITORY.fullmatch(repository):
        return (
            "repository must be lower-case path components of letters and digits, "
            "separated by '.', '_', '__' or '-' and joined by '/'"
        )
    if at and not _DIGEST.fullmatch(digest):
        return "digest must be sha256: followed by 64 lower-case hex digits"
    if tag is not None and not TAG.fullmatch(tag):
        return "tag must be 1-128 of letters, digits, '_', '.', '-', not starting with '.' or '-'"
    return None


def normalise(reference: str) -> str:
    """A valid reference in canonical form: a bare repository means its `latest` tag."""
    last = reference.rsplit("/", 1)[-1]
    return reference if "@" in reference or ":" in last else f"{reference}:latest"


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
        if selectors and _is_selector(item):
            reason = _selector_reason(item)
            if reason is not None:
                raise InvalidInput(f"{item[:300]!r}: {reason}", target=f"{target}[{index}]")
            seen.setdefault(item, None)
            continue
        reason = _reason(item)
        if reason is not None and _is_selector(item):
            reason += " (a selector such as team/*:v1.* is not accepted here)"
        if reason is not None:
            raise InvalidInput(f"{item[:300]!r}: {reason}", target=f"{target}[{index}]")
        seen.setdefault(normalise(item), None)
    return list(seen)


def _is_selector(item: str) -> bool:
    from transfer.domain.selectors import is_selector  # selectors builds on this module's grammar

    return is_selector(item)


def _selector_reason(item: str) -> str | None:
    from transfer.domain.selectors import reason

    return reason(item)


def split_reference(reference: str) -> tuple[str, str | None, str | None]:
    """(repository, tag, digest) of a normalised reference: one of tag and digest is None."""
    repository, at, digest = reference.partition("@")
    if at:
        return repository, None, digest
    repository, _, tag = reference.rpartition(":")
    return repository, tag, None


def split(artifacts: Sequence[str], size: int = MAX_PER_RUN) -> list[tuple[str, ...]]:
    """Runs of at most `size` artifacts, in order."""
    return [tuple(artifacts[i : i + size]) for i in range(0, len(artifacts), size)]


def describe(artifacts: Iterable[str], limit: int = 3) -> str:
    items = list(artifacts)
    shown = ", ".join(items[:limit])
    return shown if len(items) <= limit else f"{shown} and {len(items) - limit} more"
