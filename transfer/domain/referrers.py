"""OCI referrers: the manifests whose `subject` is an image (Notation and cosign signatures, SBOMs,
provenance attestations), which setting chooses those that travel, the registry's answers read, and the
split that keeps an image and its referrers in one run. Pure.

A registry lists an image's referrers at `GET /v2/<repo>/referrers/<digest>` (an OCI image index of
descriptors); one without that API keeps them, by OCI distribution 1.1's fallback scheme, in an index under
the tag `sha256-<hex of the subject>`. ACR Transfer carries artifacts by digest, so a referrer travels as
`repo@sha256:...` and keeps its `subject` in its own document: the target registry links it once imported.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"
ARTIFACT_TYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$")
ALL, NONE = "all", "none"
MAX_PER_SUBJECT = 1000  # descriptors read for one subject; more is not a registry we can trust


@dataclass(frozen=True)
class Descriptor:
    """One referrer as the registry lists it."""

    digest: str
    artifact_type: str | None


@dataclass(frozen=True)
class Referrer:
    """A referrer that travels: `repo@digest`, its artifact type and the digest of its subject."""

    artifact: str
    artifact_type: str | None
    subject: str

    @property
    def digest(self) -> str:
        return self.artifact.rpartition("@")[2]


@dataclass(frozen=True)
class ReferrerChoice:
    """Which referrers travel (TRANSFER_EXPORT_REFERRERS): every one, none, or those of listed types."""

    types: frozenset[str] | None  # None: all

    @classmethod
    def parse(cls, raw: str) -> ReferrerChoice:
        """`all`, `none` or a comma list of artifact types; ValueError says what is wrong."""
        value = raw.strip()
        if value.lower() == ALL:
            return cls(None)
        if value.lower() == NONE:
            return cls(frozenset())
        types = [item.strip() for item in value.split(",") if item.strip()]
        if not types:
            raise ValueError("give all, none or a comma list of artifact types")
        for item in types:
            if not ARTIFACT_TYPE.fullmatch(item):
                raise ValueError(
                    f"{item[:80]!r} is not an artifact type (type/subtype, e.g. application/spdx+json)"
                )
        return cls(frozenset(types))

    @property
    def none(self) -> bool:
        return self.types is not None and not self.types

    def travels(self, artifact_type: str | None) -> bool:
        return self.types is None or (artifact_type is not None and artifact_type in self.types)

    def __str__(self) -> str:
        if self.types is None:
            return ALL
        return ",".join(sorted(self.types)) or NONE


def fallback_tag(digest: str) -> str:
    """The OCI fallback tag that lists the referrers of `digest` where the referrers API is missing."""
    algorithm, _, hexadecimal = digest.partition(":")
    return f"{algorithm}-{hexadecimal}"


def descriptors(body: Any) -> list[Descriptor]:
    """The referrers of an OCI image index (the API's answer or a fallback tag's); ValueError when it is
    not one. Descriptors without a valid digest are left out."""
    if not isinstance(body, Mapping) or not isinstance(body.get("manifests", []), list):
        raise ValueError("not an OCI image index")
    found = []
    for item in body.get("manifests", [])[:MAX_PER_SUBJECT]:
        if not isinstance(item, Mapping) or not isinstance(item.get("digest"), str):
            continue
        if not DIGEST.fullmatch(item["digest"]):
            continue
        kind = item.get("artifactType")
        found.append(Descriptor(item["digest"], kind if isinstance(kind, str) and kind else None))
    return found


def next_page(link: str | None) -> str | None:
    """The path of the next page from a `Link: <...>; rel="next"` header."""
    if not link:
        return None
    for part in link.split(","):
        match = re.match(r'\s*<([^>]+)>\s*;\s*rel="?next"?', part)
        if match:
            return match.group(1)
    return None


def group_split(groups: Sequence[Sequence[str]], size: int) -> list[tuple[str, ...]]:
    """Runs of at most `size` artifacts, in order, each group (an image and its referrers) kept in one run
    where it fits: a group that does not fit what is left of a run starts the next one; a group larger than
    a run fills runs of its own."""
    runs: list[list[str]] = []
    current: list[str] = []
    for group in groups:
        if current and len(current) + len(group) > size:
            runs.append(current)
            current = []
        for artifact in group:
            if len(current) == size:
                runs.append(current)
                current = []
            current.append(artifact)
    if current:
        runs.append(current)
    return [tuple(run) for run in runs]
