"""Registry content beyond tag -> digest: manifest documents whose sha256 IS their digest (image manifests,
indexes, referrers with a `subject`), blobs, the times of tags and manifests, and the data-plane settings of
each registry (who lacks AcrPull, which artifacts an import cannot bring in, whether it serves the referrers
API).

`state.registries[registry key][repository]` (a `state.Repository`) stays the index of what exists (tags
and digests); this store adds what the data plane serves about it. Every method takes the state lock.
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from emulator.registry_limits import Throttles

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
OCI_NONDISTRIBUTABLE = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST, *INDEX_TYPES)
IMAGE_CONFIG_TYPES = (OCI_CONFIG, DOCKER_CONFIG)
EMPTY_JSON = b"{}"  # the OCI empty descriptor's content (artifacts without a config)
NOTARY_SIGNATURE = "application/vnd.cncf.notary.signature"
ACCESS_STATUSES = (401, 403)


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def is_foreign(layer: dict[str, Any]) -> bool:
    """A non-distributable layer (Docker's foreign layers, OCI's nondistributable types): its bytes live at
    its `urls`, outside the registry."""
    media_type = str(layer.get("mediaType") or "")
    return media_type == DOCKER_FOREIGN or ".nondistributable." in media_type


@dataclass(frozen=True)
class Manifest:
    """A manifest as stored: the exact bytes (their sha256 is `digest`), media type, image size."""

    digest: str
    media_type: str
    data: bytes
    image_size: int
    architecture: str | None = "amd64"
    os: str | None = "linux"
    # Blob bytes the builder made beside the manifest (config documents, small artifact payloads): the data
    # plane serves them. Layers are descriptors only: the emulator stores no image layers.
    blob_data: tuple[tuple[str, bytes], ...] = field(default=(), compare=False, repr=False)

    @classmethod
    def from_bytes(cls, data: bytes, media_type: str | None = None) -> Manifest:
        """A manifest read back (a transfer blob, a push); raises ValueError when it is not a schemaVersion 2
        image manifest or index."""
        try:
            document = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"the manifest is not JSON: {exc}") from None
        if not isinstance(document, dict) or document.get("schemaVersion") != 2:
            raise ValueError("the manifest is not a schemaVersion 2 image manifest or index")
        declared = document.get("mediaType")
        kind = str(media_type or declared or (OCI_INDEX if "manifests" in document else OCI_MANIFEST))
        if declared and media_type and declared != media_type:
            raise ValueError(f"the manifest's mediaType '{declared}' is not its Content-Type '{media_type}'")
        if kind not in MANIFEST_TYPES:
            raise ValueError(f"the media type '{kind}' is not a manifest type the registry accepts")
        index = kind in INDEX_TYPES
        entries = (
            document.get("manifests") if index else [document.get("config"), *(document.get("layers") or [])]
        )
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise ValueError("the manifest's descriptors are malformed")
        for entry in entries:
            if not isinstance(entry.get("digest"), str) or not isinstance(entry.get("size"), int):
                raise ValueError("every descriptor needs a digest and an integer size")
        size = sum(int(e["size"]) for e in entries)
        config_type = None if index else str((document.get("config") or {}).get("mediaType") or "")
        image = config_type in IMAGE_CONFIG_TYPES
        return cls(
            digest_of(data),
            kind,
            data,
            size,
            "amd64" if image else None,
            "linux" if image else None,
        )

    # --- what the document says (parsed once)

    @cached_property
    def document(self) -> dict[str, Any]:
        parsed = json.loads(self.data.decode("utf-8"))
        return parsed if isinstance(parsed, dict) else {}

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    @property
    def subject(self) -> str | None:
        """The digest of the manifest this one refers to (a signature's, an SBOM's image), or None."""
        subject = self.document.get("subject")
        return str(subject["digest"]) if isinstance(subject, dict) and subject.get("digest") else None

    @property
    def artifact_type(self) -> str | None:
        """As the referrers API reports it: `artifactType`, else (an image manifest) its config's type."""
        if self.document.get("artifactType"):
            return str(self.document["artifactType"])
        if self.is_index:
            return None
        config = self.document.get("config") or {}
        return str(config.get("mediaType")) if config.get("mediaType") else None

    @property
    def annotations(self) -> dict[str, str]:
        found = self.document.get("annotations")
        return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}

    @property
    def layers(self) -> list[dict[str, Any]]:
        return [] if self.is_index else list(self.document.get("layers") or [])

    @property
    def children(self) -> list[dict[str, Any]]:
        """An index's manifest descriptors (each platform's image)."""
        return list(self.document.get("manifests") or []) if self.is_index else []

    @property
    def blobs(self) -> list[dict[str, Any]]:
        """The blobs an image manifest needs in the registry: its config and its distributable layers."""
        if self.is_index:
            return []
        config = self.document.get("config")
        return [d for d in [config, *self.layers] if isinstance(d, dict) and not is_foreign(d)]

    def descriptor(self) -> dict[str, Any]:
        """This manifest as a referrer or an index entry describes it."""
        found: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": len(self.data)}
        if self.artifact_type:
            found["artifactType"] = self.artifact_type
        if self.annotations:
            found["annotations"] = self.annotations
        return found


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
    return Manifest(
        digest_of(data),
        OCI_MANIFEST,
        data,
        len(config) + layer_size,
        blob_data=((digest_of(config), config),),
    )


def seed_manifest(repository: str, tag: str) -> Manifest:
    """The image a seeded `repo:tag` gets: stable, so the same seed gives the same digest every time."""
    return build_manifest(f"{repository}:{tag}")


def new_manifest(repository: str, tag: str) -> Manifest:
    """A new image for `repo:tag` (a push of a rebuilt image): a digest never seen before."""
    return build_manifest(f"{repository}:{tag}#{uuid.uuid4().hex}")


def layer_descriptor(label: str, index: int, spec: dict[str, Any], docker: bool) -> dict[str, Any]:
    """A layer descriptor from `{"size", "mediaType"?, "urls"?, "digest"?}` (foreign layers carry urls)."""
    default_type = DOCKER_LAYER if docker else OCI_LAYER
    media_type = str(spec.get("mediaType") or default_type)
    descriptor: dict[str, Any] = {
        "mediaType": media_type,
        "digest": str(spec.get("digest") or digest_of(f"{label}:layer{index}".encode())),
        "size": int(spec["size"]),
    }
    urls = spec.get("urls")
    if urls is None and is_foreign(descriptor):
        urls = [f"https://mcr.microsoft.com/v2/emulator/blobs/{descriptor['digest']}"]
    if urls:
        descriptor["urls"] = [str(u) for u in urls]
    return descriptor


def image_manifest(
    label: str,
    layers: list[dict[str, Any]],
    *,
    media_type: str = OCI_MANIFEST,
    architecture: str = "amd64",
    os: str = "linux",
) -> Manifest:
    """An image manifest (OCI or Docker v2) whose layers are `layers` specs (sizes may be any, an 8 GB+
    layer included: descriptors only), with a real config document for the platform."""
    docker = media_type == DOCKER_MANIFEST
    descriptors = [layer_descriptor(label, i, spec, docker) for i, spec in enumerate(layers)]
    config = json.dumps(
        {
            "architecture": architecture,
            "os": os,
            "config": {"Labels": {"emulator.image": label}},
            "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in descriptors]},
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode("utf-8")
    document = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {
            "mediaType": DOCKER_CONFIG if docker else OCI_CONFIG,
            "digest": digest_of(config),
            "size": len(config),
        },
        "layers": descriptors,
    }
    data = json.dumps(document, indent=2).encode("utf-8")
    size = len(config) + sum(d["size"] for d in descriptors)
    return Manifest(
        digest_of(data), media_type, data, size, architecture, os, blob_data=((digest_of(config), config),)
    )


def index_manifest(children: list[Manifest], *, media_type: str = OCI_INDEX) -> Manifest:
    """A multi-platform index (OCI image index or Docker manifest list) of image manifests."""
    entries = []
    for child in children:
        entry = {"mediaType": child.media_type, "digest": child.digest, "size": len(child.data)}
        entry["platform"] = {"architecture": child.architecture or "amd64", "os": child.os or "linux"}
        entries.append(entry)
    data = json.dumps({"schemaVersion": 2, "mediaType": media_type, "manifests": entries}, indent=2).encode()
    return Manifest(digest_of(data), media_type, data, sum(e["size"] for e in entries), None, None)


def referrer_manifest(
    subject: Manifest | dict[str, Any],
    artifact_type: str,
    *,
    annotations: dict[str, str] | None = None,
    payload: bytes | None = None,
    layer_media_type: str | None = None,
) -> Manifest:
    """An OCI artifact whose `subject` is `subject` (a signature, an SBOM, an attestation), as oras, notation
    and cosign push them: `artifactType`, the empty config, one layer holding `payload`."""
    described = subject.descriptor() if isinstance(subject, Manifest) else dict(subject)
    link = {k: described[k] for k in ("mediaType", "digest", "size") if k in described}
    content = payload if payload is not None else json.dumps({"artifactType": artifact_type}).encode()
    default_layer = "application/jose+json" if artifact_type == NOTARY_SIGNATURE else artifact_type
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": OCI_EMPTY, "digest": digest_of(EMPTY_JSON), "size": len(EMPTY_JSON)},
        "layers": [
            {
                "mediaType": layer_media_type or default_layer,
                "digest": digest_of(content),
                "size": len(content),
            }
        ],
        "subject": link,
    }
    if annotations:
        document["annotations"] = dict(annotations)
    data = json.dumps(document, indent=2).encode("utf-8")
    return Manifest(
        digest_of(data),
        OCI_MANIFEST,
        data,
        len(EMPTY_JSON) + len(content),
        None,
        None,
        blob_data=((digest_of(EMPTY_JSON), EMPTY_JSON), (digest_of(content), content)),
    )


def referrers_index(referrers: list[Manifest]) -> Manifest:
    """The OCI image index the referrers API answers, and the one clients keep under the fallback tag."""
    entries = [r.descriptor() for r in referrers]
    data = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}, indent=2).encode()
    return Manifest(digest_of(data), OCI_INDEX, data, sum(e["size"] for e in entries), None, None)


def fallback_tag(digest: str) -> str:
    """OCI distribution 1.1's referrers tag scheme: `sha256:<hex>` -> `sha256-<hex>`."""
    algorithm, _, hexdigest = digest.partition(":")
    return f"{algorithm}-{hexdigest}"[:128]


@dataclass(frozen=True)
class Change:
    """A push or a delete in a registry, as its events report it."""

    action: str  # "push" or "delete"
    registry_id: str
    repository: str
    tag: str | None
    digest: str
    media_type: str | None
    size: int  # the manifest's bytes
    via: str  # "data-plane" (a client's PUT / DELETE), "admin" (seeding: stands for a push), "import"
    user_agent: str = ""
    request_id: str = ""
    actor: str = ""  # who pushed, when known


@dataclass
class Times:
    created: datetime
    updated: datetime


@dataclass
class RegistrySettings:
    """What a registry's data plane offers: the referrers API (or not: clients fall back to tags), and the
    referrers API's page size (None: one page)."""

    referrers_api: bool = True
    referrers_page_size: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"referrersApi": self.referrers_api, "referrersPageSize": self.referrers_page_size}


@dataclass
class Upload:
    """A blob upload session (`POST /v2/{repo}/blobs/uploads/`, PATCH chunks, PUT `?digest=`)."""

    registry_key: str
    repository: str
    data: bytearray = field(default_factory=bytearray)


class RegistryStore:
    """Manifest documents and blob bytes (by digest, shared by all registries: content addressed), times per
    registry, repository and tag / digest, and per registry: its blobs (digest -> size, pushed or declared by
    a manifest), its data-plane settings, principals without AcrPull, artifacts an import fails."""

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
            self.blob_sizes: dict[str, dict[str, int]] = {}  # registry key -> digest -> size
            self.blob_bytes: dict[str, bytes] = {}  # digest -> content (pushed blobs, built configs)
            self.settings: dict[str, RegistrySettings] = {}  # registry key -> data-plane settings
            self.uploads: dict[str, Upload] = {}  # upload session id -> its bytes so far
            self.throttles = Throttles(self.lock)  # data-plane 429s: ListReferrers limits, injected rules

    def forget(self, registry_key: str) -> None:
        """A deleted registry: its times and settings go (documents stay: they are content addressed)."""
        with self.lock:
            for table in (self.tag_times, self.manifest_times):
                for key in [k for k in table if k[0] == registry_key]:
                    del table[key]
            self.denied.pop(registry_key, None)
            self.import_failures.pop(registry_key, None)
            self.blob_sizes.pop(registry_key, None)
            self.settings.pop(registry_key, None)
            self.throttles.forget(registry_key)

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
                for blob_digest, content in manifest.blob_data:
                    self.blob_bytes.setdefault(blob_digest, content)
                sizes = self.blob_sizes.setdefault(registry_key, {})
                for blob in manifest.blobs:
                    sizes.setdefault(str(blob["digest"]), int(blob["size"]))
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

    def forget_manifest(self, registry_key: str, repository: str, digest: str, tags: list[str]) -> None:
        with self.lock:
            self.manifest_times.pop((registry_key, repository, digest), None)
            for tag in tags:
                self.tag_times.pop((registry_key, repository, tag), None)

    def forget_tag(self, registry_key: str, repository: str, tag: str) -> None:
        with self.lock:
            self.tag_times.pop((registry_key, repository, tag), None)

    # --- blobs

    def add_blob(self, registry_key: str, data: bytes) -> str:
        digest = digest_of(data)
        with self.lock:
            self.blob_bytes.setdefault(digest, bytes(data))
            self.blob_sizes.setdefault(registry_key, {})[digest] = len(data)
        return digest

    def blob_size(self, registry_key: str, digest: str) -> int | None:
        """The blob's size when the registry has it (pushed, or declared by one of its manifests)."""
        with self.lock:
            return (self.blob_sizes.get(registry_key) or {}).get(digest)

    def remove_blob(self, registry_key: str, digest: str) -> bool:
        with self.lock:
            return (self.blob_sizes.get(registry_key) or {}).pop(digest, None) is not None

    def blob(self, digest: str) -> bytes | None:
        with self.lock:
            return self.blob_bytes.get(digest)

    # --- data-plane settings

    def settings_of(self, registry_key: str) -> RegistrySettings:
        with self.lock:
            return self.settings.setdefault(registry_key, RegistrySettings())

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
