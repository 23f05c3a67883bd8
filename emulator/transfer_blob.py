"""The emulator's transfer blob: JSON listing the exported artifacts with their digests.

(The real service writes a tar of layers and manifests; this format is the emulator's own.)
{
  "format": "acr-transfer-emulator/v1",
  "sourceRegistry": "<login server>",
  "pipelineRunId": "<resource id of the export run>",
  "exportedAt": "<ISO time, emulator clock>",
  "artifacts": [{"artifact": "repo:tag", "repository": "repo", "tag": "tag" | null, "digest": "sha256:...",
                 "mediaType": "application/vnd.oci.image.manifest.v1+json", "manifest": "<document>",
                 "children": [{"digest", "mediaType", "manifest"}]}]
}
`manifest` is the manifest's exact text (UTF-8; its sha256 is `digest`), so an import writes the same digest
(a referrer keeps its `subject`, so the target's referrers API lists it); `mediaType` and `manifest` are
absent for an image the emulator holds no document of. `children` (an index only) are its platforms' image
manifests, imported untagged before it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

FORMAT = "acr-transfer-emulator/v1"
CATEGORY = "acr-transfer-blob"
CONTENT_TYPE = "application/json"


@dataclass(frozen=True)
class Artifact:
    artifact: str  # as requested
    repository: str
    tag: str | None
    digest: str
    media_type: str | None = None
    manifest: bytes | None = None  # the manifest document; sha256(manifest) == digest
    children: tuple[Child, ...] = ()  # an index's platform manifests


@dataclass(frozen=True)
class Child:
    digest: str
    media_type: str
    manifest: bytes


def encode(source_registry: str, run_id: str, exported_at: str, artifacts: list[Artifact]) -> bytes:
    document = {
        "format": FORMAT,
        "sourceRegistry": source_registry,
        "pipelineRunId": run_id,
        "exportedAt": exported_at,
        "artifacts": [_artifact_entry(a) for a in artifacts],
    }
    return json.dumps(document, indent=2, sort_keys=True).encode("utf-8")


def _artifact_entry(a: Artifact) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "artifact": a.artifact,
        "repository": a.repository,
        "tag": a.tag,
        "digest": a.digest,
    }
    if a.manifest is not None:
        entry["mediaType"] = a.media_type
        entry["manifest"] = a.manifest.decode("utf-8")
    if a.children:
        entry["children"] = [
            {"digest": c.digest, "mediaType": c.media_type, "manifest": c.manifest.decode("utf-8")}
            for c in a.children
        ]
    return entry


class NotATransferBlob(ValueError):
    pass


def decode(data: bytes) -> tuple[dict[str, Any], list[Artifact]]:
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise NotATransferBlob("the blob is not a transfer blob written by an export pipeline run") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise NotATransferBlob(f"the blob is not a transfer blob (format '{FORMAT}' expected)")
    try:
        artifacts = [_artifact(a) for a in document["artifacts"]]
    except (KeyError, TypeError, AttributeError):
        raise NotATransferBlob("the transfer blob's artifact list is malformed") from None
    return document, artifacts


def _artifact(entry: dict[str, Any]) -> Artifact:
    manifest = entry.get("manifest")
    data = manifest.encode("utf-8") if isinstance(manifest, str) else None
    digest = str(entry["digest"])
    if data is not None and catalog_digest(data) != digest:
        raise NotATransferBlob(f"the manifest of '{entry['artifact']}' does not have the digest {digest}")
    media_type = entry.get("mediaType") if data is not None else None
    children = []
    for child in entry.get("children") or []:
        content = str(child["manifest"]).encode("utf-8")
        if catalog_digest(content) != child["digest"]:
            raise NotATransferBlob(f"a platform manifest of '{entry['artifact']}' does not have its digest")
        children.append(Child(str(child["digest"]), str(child["mediaType"]), content))
    return Artifact(
        str(entry["artifact"]),
        str(entry["repository"]),
        entry.get("tag"),
        digest,
        media_type,
        data,
        tuple(children),
    )


def catalog_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def md5(data: bytes) -> bytes:
    return hashlib.md5(data).digest()  # noqa: S324 - Content-MD5 is what the service checks, not security


def md5_base64(data: bytes) -> str:
    return base64.b64encode(md5(data)).decode("ascii")
