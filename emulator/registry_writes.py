"""Pushes and deletes on a registry's data plane, as docker, oras, notation, cosign and
`ContainerRegistryClient.upload_blob` / `set_manifest` / `delete_manifest` send them:

- blobs: `POST /v2/{repo}/blobs/uploads/` (monolithic with `?digest=`, or a session: `PATCH` chunks, then
  `PUT ...?digest=`; `?mount=&from=` mounts a blob the registry has), `GET|HEAD /v2/{repo}/blobs/{digest}`;
- manifests: `PUT /v2/{repo}/manifests/{tag or digest}` (an image manifest's config and distributable layers
  must be in the registry, an index's manifests in the repository; a manifest with a `subject` is a referrer
  and, on a registry with the referrers API, the answer carries `OCI-Subject`), `DELETE` by digest (the
  manifest and its tags) or by tag (the tag only).

Every push and delete goes through `Registries.add` / `delete_manifest`, so the registry's events see it.
"""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import quote

from emulator import ids
from emulator.acr import Registries
from emulator.registry_content import MANIFEST_TYPES, Manifest, Upload, digest_of
from emulator.registry_http import COMMON_HEADERS, error
from emulator.server import Request, Response

REPOSITORY = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
TAG = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
MAX_BLOB_BYTES = 64 * 1024 * 1024  # the emulator keeps blobs in memory (not ACR's limit)


class Writer:
    """One write request to one repository of one registry."""

    def __init__(
        self, registries: Registries, registry_id: str, repository: str, request: Request, actor: str
    ) -> None:
        self.registries = registries
        self.store = registries.store
        self.registry_id = registry_id
        self.key = ids.key(registry_id)
        self.repository = repository
        self.request = request
        self.actor = actor

    def _who(self) -> dict[str, Any]:
        return {
            "via": "data-plane",
            "user_agent": self.request.headers.get("user-agent", ""),
            "actor": self.actor,
            "request_id": self.request.headers.get("x-ms-client-request-id") or str(uuid.uuid4()),
        }

    def _invalid_name(self) -> Response | None:
        if REPOSITORY.match(self.repository):
            return None
        return error(400, "NAME_INVALID", "invalid repository name", {"name": self.repository})

    # --- manifests

    def put_manifest(self, reference: str) -> Response:
        invalid = self._invalid_name()
        if invalid:
            return invalid
        by_digest = reference.startswith("sha256:")
        if not by_digest and not TAG.match(reference):
            return error(400, "TAG_INVALID", "manifest tag did not match URI", {"tag": reference})
        content_type = (self.request.headers.get("content-type") or "").split(";")[0].strip()
        try:
            manifest = Manifest.from_bytes(
                self.request.body, content_type if content_type in MANIFEST_TYPES else None
            )
        except ValueError as exc:
            return error(400, "MANIFEST_INVALID", f"manifest invalid: {exc}")
        if by_digest and reference != manifest.digest:
            return error(
                400, "DIGEST_INVALID", "provided digest did not match uploaded content", {"digest": reference}
            )
        missing = self._missing(manifest)
        if missing is not None:
            return error(400, "MANIFEST_BLOB_UNKNOWN", "blob unknown to registry", {"digest": missing})
        tag = None if by_digest else reference
        self.registries.add(self.registry_id, self.repository, tag, manifest.digest, manifest, **self._who())
        headers = {
            **COMMON_HEADERS,
            "Location": f"/v2/{quote(self.repository)}/manifests/{manifest.digest}",
            "Docker-Content-Digest": manifest.digest,
        }
        if manifest.subject and self.store.settings_of(self.key).referrers_api:
            headers["OCI-Subject"] = manifest.subject
        return Response(201, None, headers)

    def _missing(self, manifest: Manifest) -> str | None:
        """The first blob (image manifest) or manifest (index) the push refers to that the registry lacks."""
        if manifest.is_index:
            with self.registries.state.lock:
                repo = self.registries.content(self.registry_id).get(self.repository)
                known = set(repo.manifests) if repo else set()
            for child in manifest.children:
                if child["digest"] not in known:
                    return str(child["digest"])
            return None
        for blob in manifest.blobs:
            if self.store.blob_size(self.key, str(blob["digest"])) is None:
                return str(blob["digest"])
        return None

    def delete_manifest(self, reference: str) -> Response:
        if reference.startswith("sha256:"):
            deleted = self.registries.delete_manifest(
                self.registry_id, self.repository, reference, **self._who()
            )
            if not deleted:
                return error(404, "MANIFEST_UNKNOWN", "manifest unknown", {"digest": reference})
        elif not self.registries.untag(self.registry_id, self.repository, reference):
            return error(404, "MANIFEST_UNKNOWN", "manifest unknown", {"Tag": reference})
        return Response(202, None, dict(COMMON_HEADERS))

    # --- blobs

    def get_blob(self, digest: str) -> Response:
        size = self.store.blob_size(self.key, digest)
        if size is None:
            return error(404, "BLOB_UNKNOWN", "blob unknown to registry", {"digest": digest})
        headers = {
            **COMMON_HEADERS,
            "Docker-Content-Digest": digest,
            "Content-Type": "application/octet-stream",
        }
        if self.request.method == "HEAD":
            return Response(200, b"", {**headers, "Content-Length": str(size)})
        content = self.store.blob(digest)
        if content is None:
            return error(
                404,
                "BLOB_UNKNOWN",
                "blob unknown to registry: the emulator holds no bytes of this layer (only declared)",
                {"digest": digest},
            )
        wanted = _range(self.request.headers.get("range", ""), len(content))
        if wanted is None:
            return Response(200, content, headers)
        first, last = wanted
        headers["Content-Range"] = f"bytes {first}-{last}/{len(content)}"
        return Response(206, content[first : last + 1], headers)

    def delete_blob(self, digest: str) -> Response:
        if not self.store.remove_blob(self.key, digest):
            return error(404, "BLOB_UNKNOWN", "blob unknown to registry", {"digest": digest})
        return Response(202, None, {**COMMON_HEADERS, "Docker-Content-Digest": digest})

    def start_upload(self) -> Response:
        invalid = self._invalid_name()
        if invalid:
            return invalid
        query = self.request.query
        mounted = query.get("mount")
        if mounted and self.store.blob_size(self.key, mounted) is not None:
            return self._created(mounted)
        digest = query.get("digest")
        if digest:
            return self._finish(digest, bytes(self.request.body))
        session = str(uuid.uuid4())
        with self.registries.state.lock:
            self.store.uploads[session] = Upload(self.key, self.repository, bytearray(self.request.body))
        return self._accepted(session, len(self.request.body))

    def _session(self, session: str) -> Upload | None:
        with self.registries.state.lock:
            upload = self.store.uploads.get(session)
        if upload is None or upload.registry_key != self.key or upload.repository != self.repository:
            return None
        return upload

    def _unknown_upload(self, session: str) -> Response:
        return error(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", {"uuid": session})

    def upload_chunk(self, session: str) -> Response:
        upload = self._session(session)
        if upload is None:
            return self._unknown_upload(session)
        with self.registries.state.lock:
            if len(upload.data) + len(self.request.body) > MAX_BLOB_BYTES:
                return error(413, "SIZE_INVALID", f"the emulator keeps blobs up to {MAX_BLOB_BYTES} bytes")
            upload.data.extend(self.request.body)
            size = len(upload.data)
        return self._accepted(session, size)

    def finish_upload(self, session: str) -> Response:
        upload = self._session(session)
        if upload is None:
            return self._unknown_upload(session)
        digest = self.request.query.get("digest") or ""
        with self.registries.state.lock:
            self.store.uploads.pop(session, None)
        return self._finish(digest, bytes(upload.data) + bytes(self.request.body))

    def upload_status(self, session: str) -> Response:
        upload = self._session(session)
        if upload is None:
            return self._unknown_upload(session)
        return Response(204, None, self._upload_headers(session, len(upload.data)))

    def cancel_upload(self, session: str) -> Response:
        if self._session(session) is None:
            return self._unknown_upload(session)
        with self.registries.state.lock:
            self.store.uploads.pop(session, None)
        return Response(204, None, dict(COMMON_HEADERS))

    def _finish(self, digest: str, content: bytes) -> Response:
        if not DIGEST.match(digest):
            return error(
                400, "DIGEST_INVALID", "provided digest did not match uploaded content", {"digest": digest}
            )
        if len(content) > MAX_BLOB_BYTES:
            return error(413, "SIZE_INVALID", f"the emulator keeps blobs up to {MAX_BLOB_BYTES} bytes")
        if digest_of(content) != digest:
            return error(
                400, "DIGEST_INVALID", "provided digest did not match uploaded content", {"digest": digest}
            )
        self.store.add_blob(self.key, content)
        return self._created(digest)

    def _created(self, digest: str) -> Response:
        headers = {
            **COMMON_HEADERS,
            "Location": f"/v2/{quote(self.repository)}/blobs/{digest}",
            "Docker-Content-Digest": digest,
        }
        return Response(201, None, headers)

    def _upload_headers(self, session: str, size: int) -> dict[str, str]:
        return {
            **COMMON_HEADERS,
            "Location": f"/v2/{quote(self.repository)}/blobs/uploads/{session}",
            "Docker-Upload-UUID": session,
            "Range": f"0-{max(size - 1, 0)}",
        }

    def _accepted(self, session: str, size: int) -> Response:
        return Response(202, None, self._upload_headers(session, size))


def _range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) of a `Range: bytes=first-[last]` header within `size` bytes; None for none."""
    if not header.startswith("bytes=") or size == 0:
        return None
    first_text, _, last_text = header[len("bytes=") :].partition("-")
    try:
        first = int(first_text)
        last = min(int(last_text), size - 1) if last_text else size - 1
    except ValueError:
        return None
    return (first, last) if 0 <= first <= last else None
