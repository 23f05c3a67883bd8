"""Registry content beyond tag -> digest: manifest documents whose sha256 IS their digest, the times of tags
and manifests, and the data-plane settings of each registry (who lacks AcrPull, which artifacts an import
cannot bring in).

`state.registries[registry key][repository]` (a `state.Repository`) stays the index of what exists (tags
and digests); this store adds what the data plane serves about it. Every method takes the state lock.
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
ACCESS_STATUSES = (401, 403)


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Manifest:
    """An image manifest as stored: the exact bytes (their sha256 is `digest`), media type, image size."""

    digest: str
    media_type: str
    data: bytes
    image_size: int
    architecture: str | None = "amd64"
    os: str | None = "linux"

    @classmethod
    def from_bytes(cls, data: bytes, media_type: str | None = None) -> Manifest:
        """A manifest read back (from a transfer blob); raises ValueError when it is not a JSON manifest."""
        try:
            document = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"the manifest is not JSON: {exc}") from None
        if not isinstance(document, dict) or document.get("schemaVersion") != 2:
            raise ValueError("the manifest is not a schemaVersion 2 image manifest")
        blobs = [document.get("config") or {}, *(document.get("layers") or [])]
        size = sum(int(b.get("size") or 0) for b in blobs if isinstance(b, dict))
        kind = media_type or document.get("mediaType") or OCI_MANIFEST
        return cls(digest_of(data), str(kind), data, size)


def build_manifest(label: str) -> Manifest:
    """A small, real OCI image manifest (config + one layer descriptor), the same for the same label.

    The config blob is a real JSON document (its digest and size are those of its bytes); the layer is a
    descriptor only (the emulator stores no layers)."""
    seed = hashlib.sha256(label.encode("utf-8")).hexdigest()
    diff_id = "sha256:" + hashlib.sha256(f"diff:{seed}".encode()).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": {"emulator.image": label}},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode("utf-8")
    layer_size = 1024 + int(seed[:8], 16) % (8 * 1024 * 1024)
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": digest_of(config), "size": len(config)},
        "layers": [
            {
                "mediaType": OCI_LAYER,
                "digest": "sha256:" + hashlib.sha256(f"layer:{seed}".encode()).hexdigest(),
                "size": layer_size,
            }
        ],
    }
    data = json.dumps(document, indent=2).encode("utf-8")
    return Manifest(digest_of(data), OCI_MANIFEST, data, len(config) + layer_size)


def seed_manifest(repository: str, tag: str) -> Manifest:
    """The image a seeded `repo:tag` gets: stable, so the same seed gives the same digest every time."""
    return build_manifest(f"{repository}:{tag}")


def new_manifest(repository: str, tag: str) -> Manifest:
    """A new image for `repo:tag` (a push of a rebuilt image): a digest never seen before."""
    return build_manifest(f"{repository}:{tag}#{uuid.uuid4().hex}")


@dataclass
class Times:
    created: datetime
    updated: datetime


class RegistryStore:
    """Manifest documents (by digest, shared by all registries: content addressed), times per registry,
    repository and tag / digest, and per registry: principals without AcrPull, artifacts an import fails."""

    def __init__(self, lock: threading.RLock) -> None:
        self.lock = lock
        self.clear()

    def clear(self) -> None:
        with self.lock:
            self.documents: dict[str, Manifest] = {}
            self.tag_times: dict[tuple[str, str, str], Times] = {}  # (registry key, repo, tag)
            self.manifest_times: dict[tuple[str, str, str], Times] = {}  # (registry key, repo, digest)
            self.denied: dict[str, dict[str, int]] = {}  # registry key -> principal (lower, "*") -> status
            self.import_failures: dict[str, dict[str, str]] = {}  # registry key -> artifact -> reason

    def forget(self, registry_key: str) -> None:
        """A deleted registry: its times and settings go (documents stay: they are content addressed)."""
        with self.lock:
            for table in (self.tag_times, self.manifest_times):
                for key in [k for k in table if k[0] == registry_key]:
                    del table[key]
            self.denied.pop(registry_key, None)
            self.import_failures.pop(registry_key, None)

    # --- content

    def document(self, digest: str) -> Manifest | None:
        with self.lock:
            return self.documents.get(digest)

    def record(
        self,
        registry_key: str,
        repository: str,
        tag: str | None,
        digest: str,
        manifest: Manifest | None,
        previous: str | None,
        now: datetime,
    ) -> None:
        """A manifest (and a tag) written at `now`; `previous` is the digest the tag pointed at before."""
        with self.lock:
            if manifest is not None:
                if manifest.digest != digest:
                    raise ValueError(f"the manifest's digest is {manifest.digest}, not {digest}")
                self.documents.setdefault(digest, manifest)
            self.manifest_times.setdefault((registry_key, repository, digest), Times(now, now))
            if tag:
                times = self.tag_times.get((registry_key, repository, tag))
                if times is None:
                    self.tag_times[(registry_key, repository, tag)] = Times(now, now)
                elif previous != digest:
                    times.updated = now
                    self.manifest_times[(registry_key, repository, digest)].updated = now

    def tag_time(self, registry_key: str, repository: str, tag: str, default: datetime) -> Times:
        with self.lock:
            return self.tag_times.get((registry_key, repository, tag)) or Times(default, default)

    def manifest_time(self, registry_key: str, repository: str, digest: str, default: datetime) -> Times:
        with self.lock:
            return self.manifest_times.get((registry_key, repository, digest)) or Times(default, default)

    # --- AcrPull

    def set_access(self, registry_key: str, principal: str, allowed: bool, status: int = 401) -> None:
        if status not in ACCESS_STATUSES:
            raise ValueError(f"status must be one of {ACCESS_STATUSES}")
        with self.lock:
            rules = self.denied.setdefault(registry_key, {})
            if allowed:
                rules.pop(principal.lower(), None)
            else:
                rules[principal.lower()] = status

    def denial(self, registry_key: str, principal: str | None) -> int | None:
        """The status a principal without AcrPull gets (401 or 403), or None when it may pull."""
        with self.lock:
            rules = self.denied.get(registry_key) or {}
            if principal and principal.lower() in rules:
                return rules[principal.lower()]
            return rules.get("*")

    def access_rules(self, registry_key: str) -> dict[str, Any]:
        with self.lock:
            return {"denied": dict(sorted((self.denied.get(registry_key) or {}).items()))}

    # --- imports that cannot bring an artifact in

    def set_import_failures(self, registry_key: str, failures: dict[str, str]) -> None:
        with self.lock:
            if failures:
                self.import_failures.setdefault(registry_key, {}).update(failures)
            else:
                self.import_failures.pop(registry_key, None)

    def import_failures_of(self, registry_key: str) -> dict[str, str]:
        with self.lock:
            return dict(sorted((self.import_failures.get(registry_key) or {}).items()))

    def import_failure(self, registry_key: str, *names: str) -> str | None:
        """The reason an import into this registry fails the artifact known by any of `names`, or None."""
        with self.lock:
            failures = self.import_failures.get(registry_key) or {}
            for name in names:
                if name in failures:
                    return failures[name]
            return None
