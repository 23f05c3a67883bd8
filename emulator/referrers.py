"""OCI referrers: the manifests whose `subject` is a given manifest (signatures, SBOMs, attestations).

- The referrers API (OCI distribution 1.1): `GET /v2/{repo}/referrers/{digest}[?artifactType=]` answers an
  OCI image index of the referrers' descriptors (`mediaType`, `digest`, `size`, `artifactType`,
  `annotations`), `OCI-Filters-Applied: artifactType` when it filtered, paged with a `Link` header when the
  registry has a page size.
- A registry can be told to lack the API: it then answers 404 as a registry without the route does, and
  clients fall back to the tag scheme `sha256-<hex>` (an index under that tag lists the referrers, kept by
  the client that pushes them: the admin API's seeding does what such a client does).
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote, urlencode

from emulator import ids
from emulator.acr import Registries
from emulator.registry_content import (
    OCI_INDEX,
    Manifest,
    fallback_tag,
    referrer_manifest,
    referrers_index,
)
from emulator.registry_http import COMMON_HEADERS, error, throttled
from emulator.server import Response

DIGEST = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
NO_ROUTE = b"404 page not found\n"  # what a registry without the route answers (Go's default 404)


def lacks_api_answer() -> Response:
    return Response(404, NO_ROUTE, {**COMMON_HEADERS, "Content-Type": "text/plain; charset=utf-8"})


def referrers(
    registries: Registries, registry_id: str, repository: str, subject: str, artifact_type: str | None = None
) -> list[Manifest]:
    """The manifests of `repository` whose subject is `subject`, oldest first (then by digest)."""
    key = ids.key(registry_id)
    store = registries.store
    with registries.state.lock:
        repo = registries.content(registry_id).get(repository)
        if repo is None:
            return []
        now = registries.clock.now()
        found = []
        for digest in repo.manifests:
            document = store.document(digest)
            if document is None or document.subject != subject:
                continue
            if artifact_type is not None and document.artifact_type != artifact_type:
                continue
            found.append((store.manifest_time(key, repository, digest, now).created, digest, document))
    return [document for _, _, document in sorted(found, key=lambda item: (item[0], item[1]))]


def list_referrers(
    registries: Registries,
    registry_id: str,
    repository: str,
    subject: str,
    query: dict[str, str],
    identity: str,
) -> Response:
    """The referrers API's answer (after authentication): 400 for a malformed digest, 404 NAME_UNKNOWN for an
    unknown repository, 429 over the ListReferrers limits, else 200 with the index."""
    key = ids.key(registry_id)
    store = registries.store
    if not DIGEST.match(subject):
        return error(
            400, "DIGEST_INVALID", "provided digest did not match uploaded content", {"digest": subject}
        )
    retry_after = store.throttles.list_referrers(key, identity)
    if retry_after is not None:
        return throttled(retry_after)
    with registries.state.lock:
        if repository not in registries.content(registry_id):
            return error(404, "NAME_UNKNOWN", "repository name not known to registry", {"name": repository})
    wanted = query.get("artifacttype") or None
    found = referrers(registries, registry_id, repository, subject, wanted)
    headers = {**COMMON_HEADERS, "Content-Type": OCI_INDEX}
    if wanted:
        headers["OCI-Filters-Applied"] = "artifactType"
    page_size = _page_size(query, store.settings_of(key).referrers_page_size)
    if isinstance(page_size, Response):
        return page_size
    if page_size is not None:
        last = query.get("last")
        digests = [r.digest for r in found]
        start = digests.index(last) + 1 if last in digests else 0
        page = found[start : start + page_size]
        if start + page_size < len(found) and page:
            more: dict[str, str] = {"last": page[-1].digest, "n": str(page_size)}
            if wanted:
                more["artifactType"] = wanted
            path = f"/v2/{quote(repository)}/referrers/{subject}"
            headers["Link"] = f'<{path}?{urlencode(more, quote_via=quote)}>; rel="next"'
        found = page
    body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [r.descriptor() for r in found]}
    return Response(200, body, headers)


def _page_size(query: dict[str, str], configured: int | None) -> int | Response | None:
    raw = query.get("n")
    if raw in (None, ""):
        return configured
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        return error(400, "PAGINATION_NUMBER_INVALID", "invalid number of results requested", {"n": raw})
    return value if configured is None else min(value, configured)


# --- what a pushing client does, for seeding through the admin API


def attach(
    registries: Registries,
    registry_id: str,
    repository: str,
    subject: str,
    artifact_type: str,
    *,
    annotations: dict[str, str] | None = None,
    payload: bytes | None = None,
    tag: str | None = None,
) -> Manifest:
    """Push a referrer of `subject` (a manifest of `repository`) as oras / notation / cosign would: the
    artifact manifest; and, when the registry lacks the referrers API, the fallback tag's index too."""
    with registries.state.lock:
        repo = registries.content(registry_id).get(repository)
        document = registries.store.document(subject)
        if repo is None or subject not in repo.manifests:
            raise ValueError(f"the repository '{repository}' has no manifest '{subject}'")
    described: Manifest | dict[str, Any] = document or {"mediaType": "", "digest": subject, "size": 0}
    manifest = referrer_manifest(described, artifact_type, annotations=annotations, payload=payload)
    registries.add(registry_id, repository, tag, manifest.digest, manifest)
    if not registries.store.settings_of(ids.key(registry_id)).referrers_api:
        add_to_fallback_tag(registries, registry_id, repository, subject, manifest)
    return manifest


def add_to_fallback_tag(
    registries: Registries, registry_id: str, repository: str, subject: str, referrer: Manifest
) -> Manifest:
    """What a client does after pushing a referrer to a registry without the API: read the index under
    `sha256-<hex>` (if any), add the referrer's descriptor, push the index back under the tag."""
    tag = fallback_tag(subject)
    with registries.state.lock:
        repo = registries.content(registry_id).get(repository)
        current = registries.store.document(repo.tags[tag]) if repo and tag in repo.tags else None
    entries = list(current.children) if current is not None else []
    if all(e.get("digest") != referrer.digest for e in entries):
        entries.append(referrer.descriptor())
    data = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}, indent=2).encode()
    index = Manifest.from_bytes(data, OCI_INDEX)
    registries.add(registry_id, repository, tag, index.digest, index)
    return index


def write_fallback_tag(registries: Registries, registry_id: str, repository: str, subject: str) -> Manifest:
    """The index a client keeps under `sha256-<hex>` for a registry without the referrers API."""
    index = referrers_index(referrers(registries, registry_id, repository, subject))
    registries.add(registry_id, repository, fallback_tag(subject), index.digest, index)
    return index


def set_api(registries: Registries, registry_id: str, enabled: bool, write_tags: bool = True) -> list[str]:
    """Serve the referrers API or lack it. Turning it off writes, for every subject that has referrers, the
    fallback tag's index (unless `write_tags` is false), as clients pushing to such a registry would have
    done; returns the tags written."""
    registries.store.settings_of(ids.key(registry_id)).referrers_api = enabled
    if enabled or not write_tags:
        return []
    written = []
    with registries.state.lock:
        content = registries.content(registry_id)
        subjects = sorted(
            {
                (name, document.subject)
                for name, repo in content.items()
                for digest in repo.manifests
                if (document := registries.store.document(digest)) is not None and document.subject
            }
        )
    for repository, subject in subjects:
        write_fallback_tag(registries, registry_id, repository, subject)
        written.append(f"{repository}:{fallback_tag(subject)}")
    return written
