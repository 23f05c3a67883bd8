"""One artifact reference: `repo`, `repo:tag` or `repo@sha256:...`, its grammar, canonical form and parts.
Pure. Selectors (transfer/domain/selectors.py) and lists of references (artifacts.py) build on it."""

from __future__ import annotations

import re

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


def reason(reference: str) -> str | None:
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


def split_reference(reference: str) -> tuple[str, str | None, str | None]:
    """(repository, tag, digest) of a normalised reference: one of tag and digest is None."""
    repository, at, digest = reference.partition("@")
    if at:
        return repository, None, digest
    repository, _, tag = reference.rpartition(":")
    return repository, tag, None
