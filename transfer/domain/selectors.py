"""Selectors: a repository pattern and a tag pattern that the app expands through the source registry's
data plane into `repo:tag` references (`team/*:v1.*`, `samples/nginx:*`, `app:*`). Pure.

The grammar, beside the exact references of transfer/domain/references.py (which never hold `*` or `?`, so the
two cannot be confused):

    selector    = repository-pattern ":" tag-pattern      (at least one wildcard in either)
    wildcards   = "*"   any run of characters; in a repository pattern, not across "/"
                  "**"  in a repository pattern only: any run of characters, across "/" too
                  "?"   exactly one character (never "/")

A pattern with its wildcards replaced by a letter must be a valid repository (or tag): lower-case path
components, no registry host, tags of letters, digits, `_ . -`. A selector always names its tag pattern
(`team/*:*` for every tag, `team/*:latest` for the latest): a bare `team/*` is refused rather than read as
`team/*:latest`. A selector never carries a digest: tags are what an incremental export follows.

Expansion order is deterministic: repositories by name, then tags by name (`matching_repositories`,
`matching_tags`); the service lists them through the registry port.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from transfer.domain.references import REPOSITORY, TAG, host_reason

WILDCARDS = ("*", "?")


def is_selector(item: str) -> bool:
    """Whether `item` is meant as a selector: it holds a wildcard (references never do)."""
    return any(w in item for w in WILDCARDS)


def _sample(pattern: str) -> str:
    """The pattern with every wildcard replaced by one letter: what a name it matches could look like."""
    return re.sub(r"\*\*|\*|\?", "a", pattern)


def reason(item: str) -> str | None:
    """Why `item` is not a valid selector; None when it is."""
    if item != item.strip() or not item:
        return "must be a non-empty selector without surrounding spaces"
    if "@" in item:
        return "a selector takes a tag pattern, not a digest (give repo@sha256:... without wildcards)"
    repository, colon, tag = item.rpartition(":")
    if not colon or "/" in tag:
        return "a selector needs a tag pattern after ':' (team/*:* for every tag, team/*:latest for latest)"
    if "***" in repository:
        return "use * (within a path component) or ** (across '/'), not ***"
    if "**" in tag:
        return "** is for repository patterns; in a tag pattern * already matches any run of characters"
    sample = _sample(repository)
    host = host_reason(sample)
    if host is not None:
        return host
    if not REPOSITORY.fullmatch(sample):
        return (
            "repository pattern must be lower-case path components of letters, digits and wildcards, "
            "separated by '.', '_', '__' or '-' and joined by '/'"
        )
    if not tag or not TAG.fullmatch(_sample(tag)):
        return (
            "tag pattern must be 1-128 of letters, digits, '_', '.', '-' and wildcards, "
            "not starting with '.' or '-'"
        )
    return None


def _compile(pattern: str, *, repository: bool) -> re.Pattern[str]:
    parts: list[str] = []
    for piece in re.split(r"(\*\*|\*|\?)", pattern):
        if piece == "**":
            parts.append(".*")
        elif piece == "*":
            parts.append("[^/]*" if repository else ".*")
        elif piece == "?":
            parts.append("[^/]")
        elif piece:
            parts.append(re.escape(piece))
    return re.compile("".join(parts))


@dataclass(frozen=True)
class Selector:
    """A valid selector, compiled. `text` is how the request gave it."""

    text: str
    repository: str
    tag: str
    _repository: re.Pattern[str]
    _tag: re.Pattern[str]

    @classmethod
    def parse(cls, text: str) -> Selector:
        """A selector from text that `reason` accepts (ValueError otherwise)."""
        why = reason(text)
        if why is not None:
            raise ValueError(why)
        repository, _, tag = text.rpartition(":")
        return cls(
            text, repository, tag, _compile(repository, repository=True), _compile(tag, repository=False)
        )

    @property
    def literal_repository(self) -> str | None:
        """The repository when its pattern has no wildcard (`samples/nginx:*`): no catalog listing needed."""
        return None if is_selector(self.repository) else self.repository

    @property
    def repository_prefix(self) -> str:
        """What every repository the pattern matches starts with: the pattern up to its first wildcard."""
        return re.split(r"[*?]", self.repository, maxsplit=1)[0]

    def matches_repository(self, name: str) -> bool:
        return self._repository.fullmatch(name) is not None

    def matches_tag(self, tag: str) -> bool:
        return self._tag.fullmatch(tag) is not None


@dataclass(frozen=True)
class Match:
    """One tag a selector matched: its `repo:tag` reference and the digest it points at now."""

    artifact: str
    repository: str
    tag: str
    digest: str


def matching_repositories(selector: Selector, names: Iterable[str]) -> list[str]:
    """The repositories the selector's repository pattern matches, by name."""
    return sorted(name for name in set(names) if selector.matches_repository(name))


def matching_tags(selector: Selector, repository: str, tags: Iterable[tuple[str, str]]) -> list[Match]:
    """The (tag, digest) pairs of `repository` that the tag pattern matches, by tag name."""
    return [
        Match(f"{repository}:{tag}", repository, tag, digest)
        for tag, digest in sorted(set(tags))
        if selector.matches_tag(tag)
    ]
