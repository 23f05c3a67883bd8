"""The manifest that travels with each transfer blob, and the verification of an import against it. Pure.

When an export run succeeds, the app writes `<blob>.manifest.json` beside its blob in the export pipeline's
container: what the run asked for, each artifact with its repository, tag and digest. The copy step carries
it with the blob (people who carry blobs across by hand carry both files). On the target side, a succeeded
import is compared with the manifest of its blob: every artifact must be in the run's `importedArtifacts`,
and, where the target registry's data plane can be read, each tag must point at the manifest's digest.

A manifest is small JSON without `category` metadata, so the import pipeline's source trigger never takes
it for a transfer blob; the blob trigger and the sweep recognise it by its name (`is_manifest`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from transfer.domain.references import split_reference

FORMAT = "acr-transfer-manifest/v1"
SUFFIX = ".manifest.json"
SIGNATURE_SUFFIX = ".sig"  # <blob>.manifest.json.sig: the manifest's signature (transfer/adapters/signing.py)
MAX_SIGNATURE_BYTES = 16 * 1024
CONTENT_TYPE = "application/json"
MAX_BYTES = 4 * 1024 * 1024  # far above 1000 artifacts; a larger blob of that name is not ours
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")


class Verification(StrEnum):
    PENDING = "pending"
    PASSED = "passed"
    FAILED = "failed"
    UNAVAILABLE = "unavailable"


def manifest_name(blob: str) -> str:
    return blob + SUFFIX


def signature_name(manifest: str) -> str:
    return manifest + SIGNATURE_SUFFIX


def is_manifest(name: str) -> bool:
    """A manifest (or its signature) beside a transfer blob, never a transfer blob itself."""
    bare = name.removesuffix(SIGNATURE_SUFFIX)
    return bare.endswith(SUFFIX) and len(bare) > len(SUFFIX)


@dataclass(frozen=True)
class ManifestArtifact:
    artifact: str  # the reference the export asked for: repo:tag or repo@sha256:...
    repository: str
    tag: str | None
    digest: str | None  # None when the source registry could not be read

    def as_json(self) -> dict[str, Any]:
        return {
            "artifact": self.artifact,
            "repository": self.repository,
            "tag": self.tag,
            "digest": self.digest,
        }


@dataclass(frozen=True)
class ManifestReferrer:
    artifact: str  # repo@sha256:...: a referrer travels by digest
    artifact_type: str | None
    subject: str  # the digest of the manifest it refers to

    @property
    def repository(self) -> str:
        return self.artifact.partition("@")[0]

    @property
    def digest(self) -> str:
        return self.artifact.partition("@")[2]

    def as_json(self) -> dict[str, Any]:
        return {
            "artifact": self.artifact,
            "digest": self.digest,
            "artifactType": self.artifact_type,
            "subject": self.subject,
        }


@dataclass(frozen=True)
class Manifest:
    run_id: str
    source_registry: str  # the login server, e.g. myregistry.azurecr.io
    exported_at: datetime
    blob: str
    artifacts: tuple[ManifestArtifact, ...]
    pipeline_run_id: str | None = None
    referrers: tuple[ManifestReferrer, ...] = ()
    catalog_digest: str | None = None  # the export run's response.catalogDigest

    @property
    def artifact_set(self) -> frozenset[str]:
        return frozenset(a.artifact for a in self.artifacts)

    def encode(self) -> bytes:
        body = {
            "format": FORMAT,
            "runId": self.run_id,
            "pipelineRunId": self.pipeline_run_id,
            "catalogDigest": self.catalog_digest,
            "sourceRegistry": self.source_registry,
            "exportedAt": _iso(self.exported_at),
            "blob": self.blob,
            "artifacts": [a.as_json() for a in self.artifacts],
            "referrers": [r.as_json() for r in self.referrers],
        }
        return (json.dumps(body, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def build(
    *,
    run_id: str,
    pipeline_run_id: str | None,
    source_registry: str,
    exported_at: datetime,
    blob: str,
    artifacts: Sequence[str],
    digests: Mapping[str, str],
    referrers: Sequence[tuple[str, str, str]] = (),
    catalog_digest: str | None = None,
) -> Manifest:
    """The manifest of an export run: its artifacts in order, each with the digest known for it (a digest
    reference carries its own)."""
    items = []
    for artifact in artifacts:
        repository, tag, own = split_reference(artifact)
        items.append(ManifestArtifact(artifact, repository, tag, own or digests.get(artifact)))
    found = tuple(ManifestReferrer(a, t or None, subject) for a, t, subject in referrers)
    return Manifest(
        run_id, source_registry, exported_at, blob, tuple(items), pipeline_run_id, found, catalog_digest
    )


def _text(body: Mapping[str, Any], key: str, *, optional: bool = False) -> str | None:
    value = body.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} must be a non-empty string")
    return value


def parse(data: bytes) -> Manifest:
    """A manifest from its bytes; ValueError says what is wrong (never echoes the content)."""
    body = _body(data)
    exported = _text(body, "exportedAt") or ""
    try:
        exported_at = datetime.fromisoformat(exported.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("exportedAt is not an ISO 8601 time") from None
    items = body.get("artifacts")
    if not isinstance(items, list):
        raise ValueError("artifacts must be a list")
    return Manifest(
        run_id=_text(body, "runId") or "",
        source_registry=_text(body, "sourceRegistry") or "",
        exported_at=exported_at if exported_at.tzinfo else exported_at.replace(tzinfo=UTC),
        blob=_text(body, "blob") or "",
        artifacts=tuple(_artifact(index, item) for index, item in enumerate(items)),
        pipeline_run_id=_text(body, "pipelineRunId", optional=True),
        referrers=_referrers(body.get("referrers", [])),
        catalog_digest=_catalog_digest(body),
    )


def _catalog_digest(body: Mapping[str, Any]) -> str | None:
    digest = _text(body, "catalogDigest", optional=True)
    if digest is not None and not _DIGEST.fullmatch(digest):
        raise ValueError("catalogDigest is not sha256:<64 hex>")
    return digest


def _referrers(items: Any) -> tuple[ManifestReferrer, ...]:
    if not isinstance(items, list):
        raise ValueError("referrers must be a list")
    found = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise ValueError(f"referrers[{index}] must be an object")
        try:
            artifact = _text(item, "artifact") or ""
            kind = _text(item, "artifactType", optional=True)
            subject = _text(item, "subject") or ""
        except ValueError as exc:
            raise ValueError(f"referrers[{index}]: {exc}") from None
        if not _DIGEST.fullmatch(artifact.partition("@")[2]) or not _DIGEST.fullmatch(subject):
            raise ValueError(f"referrers[{index}]: artifact and subject must be by sha256 digest")
        found.append(ManifestReferrer(artifact, kind, subject))
    return tuple(found)


def _body(data: bytes) -> dict[str, Any]:
    if len(data) > MAX_BYTES:
        raise ValueError(f"larger than {MAX_BYTES // (1024 * 1024)} MiB")
    try:
        body = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError("not UTF-8 JSON") from None
    if not isinstance(body, dict):
        raise ValueError("not a JSON object")
    if body.get("format") != FORMAT:
        raise ValueError(f"format is not {FORMAT}")
    return body


def _artifact(index: int, item: Any) -> ManifestArtifact:
    if not isinstance(item, dict):
        raise ValueError(f"artifacts[{index}] must be an object")
    try:
        artifact = _text(item, "artifact") or ""
        repository = _text(item, "repository") or ""
        tag = _text(item, "tag", optional=True)
        digest = _text(item, "digest", optional=True)
    except ValueError as exc:
        raise ValueError(f"artifacts[{index}]: {exc}") from None
    if digest is not None and not _DIGEST.fullmatch(digest):
        raise ValueError(f"artifacts[{index}]: digest is not sha256:<64 hex>")
    return ManifestArtifact(artifact, repository, tag, digest)


@dataclass(frozen=True)
class Outcome:
    verification: Verification
    detail: str
    skipped: tuple[str, ...] = ()


def _listed(items: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(items[:limit])
    return shown if len(items) <= limit else f"{shown} and {len(items) - limit} more"


def tags_to_check(manifest: Manifest, imported: Sequence[str]) -> list[ManifestArtifact]:
    """The manifest's tagged artifacts with a digest that the run imported: those whose tag the target
    registry should now show at the manifest's digest."""
    done = set(imported)
    return [a for a in manifest.artifacts if a.tag is not None and a.digest and a.artifact in done]


def _compare_tags(
    manifest: Manifest, imported: Sequence[str], target_digests: Mapping[str, str | None], problems: list[str]
) -> int:
    """How many tags were compared; what differs is added to `problems`."""
    missing, differs = [], []
    checking = tags_to_check(manifest, imported)
    for item in checking:
        now = target_digests.get(item.artifact)
        if now is None:
            missing.append(item.artifact)
        elif now != item.digest:
            differs.append(f"{item.artifact} is {now}, the manifest has {item.digest}")
    if missing:
        problems.append(f"not in the target registry: {_listed(missing)}")
    if differs:
        problems.append(f"digest differs: {_listed(differs, 5)}")
    return len(checking)


def verify(
    manifest: Manifest,
    imported: Sequence[str],
    target_digests: Mapping[str, str | None] | None,
    *,
    unreadable: str | None = None,
    linked: Mapping[str, bool] | None = None,
) -> Outcome:
    """Compare a succeeded import with its blob's manifest.

    `imported` is the run's importedArtifacts; `target_digests` maps each artifact of `tags_to_check` to
    the digest its tag has in the target registry now (None: the tag is not there), or is None when the
    target registry could not be read (`unreadable` says why): then only the artifact list is compared,
    and a complete list is `unavailable` (not known to be right), an incomplete one `failed`."""
    done = set(imported)
    skipped = tuple(a.artifact for a in manifest.artifacts if a.artifact not in done)
    problems: list[str] = []
    if skipped:
        problems.append(f"not imported: {_listed(skipped)}")
    checked = 0
    if target_digests is not None:
        checked = _compare_tags(manifest, imported, target_digests, problems)
    unlinked = [r.artifact for r in manifest.referrers if linked is not None and not linked.get(r.artifact)]
    if unlinked:
        problems.append(f"referrers not linked to their subject in the target registry: {_listed(unlinked)}")
    total = len(manifest.artifacts)
    if problems:
        return Outcome(Verification.FAILED, "; ".join(problems), skipped)
    if target_digests is None:
        why = f": {unreadable}" if unreadable else ""
        detail = f"{_all(total)} imported, but the target registry could not be read{why}"
        return Outcome(Verification.UNAVAILABLE, detail, skipped)
    tags = "1 tag" if checked == 1 else f"{checked} tags"
    detail = f"{_all(total)} imported; {tags} at the manifest's digest"
    if manifest.referrers and linked is not None:
        detail += f"; {_linked(len(manifest.referrers))}"
    return Outcome(Verification.PASSED, detail, skipped)


def _all(total: int) -> str:
    return "the 1 artifact" if total == 1 else f"all {total} artifacts"


def _linked(count: int) -> str:
    return "1 referrer linked to its subject" if count == 1 else f"{count} referrers linked to their subjects"
