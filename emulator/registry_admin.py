"""The admin routes of a registry's data plane, `/_emulator/registries/{name}/{route}`: content seeding that
stands for pushes (retag, images with layer specs, multi-platform indexes, referrers), AcrPull denials,
import failures, the referrers API switch, throttling and the ListReferrers limits."""

from __future__ import annotations

from typing import Any

from emulator import ids, referrers
from emulator.acr import Registries
from emulator.arm_errors import ApiError, bad_request
from emulator.clock import iso
from emulator.registry_content import (
    ACCESS_STATUSES,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    Manifest,
    image_manifest,
    index_manifest,
    new_manifest,
)
from emulator.server import Response

ADMIN_ROUTES = (
    "retag",
    "manifests",
    "access",
    "import-failures",
    "referrers",
    "referrers-api",
    "throttle",
    "limits",
    "index",
    "delete",
)
IMPORT_FAILURE = "the artifact could not be imported (a failure set through the emulator's admin API)"
MEDIA_TYPES = {"oci": OCI_MANIFEST, "docker": DOCKER_MANIFEST}
INDEX_MEDIA_TYPES = {"oci": OCI_INDEX, "docker": DOCKER_LIST}


def endpoint_of(registries: Registries, name: str) -> str | None:
    """`https://127.0.0.1:{port}` of the registry `name` (None when the data plane is not wired)."""
    return f"https://127.0.0.1:{registries.listen(name)}" if registries.listen else None


def admin(
    registries: Registries, method: str, registry_id: str, rest: list[str], body: dict[str, Any]
) -> Response:
    key = ids.key(registry_id)
    store = registries.store
    route = (method, rest[0])
    if route == ("POST", "retag"):
        return Response(200, retag(registries, registry_id, body))
    if route == ("GET", "manifests"):
        return Response(200, {"id": registry_id, "manifests": manifest_list(registries, registry_id)})
    if route == ("GET", "access"):
        return Response(200, store.access_rules(key))
    if route == ("POST", "access"):
        principal = body.get("principal") or "*"
        allowed = body.get("acrPull")
        status = body.get("status", 401)
        if not isinstance(principal, str) or not isinstance(allowed, bool) or status not in ACCESS_STATUSES:
            raise bad_request(
                'Body: {"principal": "*" or an object/application id, "acrPull": true|false, '
                '"status": 401|403}.'
            )
        store.set_access(key, principal, allowed, status)
        return Response(200, store.access_rules(key))
    if route == ("POST", "import-failures"):
        artifacts = body.get("artifacts")
        if isinstance(artifacts, list) and all(isinstance(a, str) for a in artifacts):
            artifacts = dict.fromkeys(artifacts, str(body.get("message") or IMPORT_FAILURE))
        if not isinstance(artifacts, dict) or not artifacts:
            raise bad_request('Body: {"artifacts": ["repo:tag", ...], "message"?: "why"}.')
        store.set_import_failures(key, {str(a): str(m) for a, m in artifacts.items()})
        return Response(200, {"importFailures": store.import_failures_of(key)})
    if route == ("GET", "import-failures"):
        return Response(200, {"importFailures": store.import_failures_of(key)})
    if route == ("DELETE", "import-failures"):
        store.set_import_failures(key, {})
        return Response(200, {"importFailures": {}})
    extra = _ROUTES.get(route)
    if extra is not None:
        return extra(registries, registry_id, body)
    raise ApiError(404, "NotFound", f"Unknown registry admin route {method} {'/'.join(rest)}.")


def retag(registries: Registries, registry_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Point `repository:tag` at a new image (a new manifest, so a new digest), or at `digest` when given
    (a manifest the repository already has). The old manifest stays, untagged, as after a push."""
    repository, tag, digest = body.get("repository"), body.get("tag"), body.get("digest")
    if not isinstance(repository, str) or not repository or not isinstance(tag, str) or not tag:
        raise bad_request('Body: {"repository": "samples/hello", "tag": "v1", "digest"?: "sha256:..."}.')
    with registries.state.lock:
        repo = registries.content(registry_id).get(repository)
        previous = repo.tags.get(tag) if repo else None
        if digest is None:
            manifest = new_manifest(repository, tag)
            registries.add(registry_id, repository, tag, manifest.digest, manifest)
            digest = manifest.digest
        else:
            if repo is None or digest not in repo.manifests:
                raise bad_request(f"The repository '{repository}' has no manifest '{digest}'.")
            registries.add(registry_id, repository, tag, digest, registries.store.document(digest))
    return {"repository": repository, "tag": tag, "digest": digest, "previousDigest": previous}


def manifest_list(registries: Registries, registry_id: str) -> list[dict[str, Any]]:
    """Every manifest of the registry: repository, digest, tags, mediaType, imageSize, times, document."""
    key = ids.key(registry_id)
    found = []
    with registries.state.lock:
        now = registries.clock.now()
        for name, repo in sorted(registries.content(registry_id).items()):
            for digest in sorted(repo.manifests):
                manifest = registries.store.document(digest)
                times = registries.store.manifest_time(key, name, digest, now)
                found.append(
                    {
                        "repository": name,
                        "digest": digest,
                        "tags": sorted(t for t, d in repo.tags.items() if d == digest),
                        "mediaType": manifest.media_type if manifest else None,
                        "imageSize": manifest.image_size if manifest else 0,
                        "createdTime": iso(times.created),
                        "lastUpdateTime": iso(times.updated),
                        "document": manifest is not None,
                    }
                )
    return found


# --- seeding that stands for pushes


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise bad_request(f"'{name}' (a non-empty string) is required.")
    return value


def layer_specs(body: dict[str, Any]) -> list[dict[str, Any]]:
    """`layerSizes: [bytes, ...]` or `layers: [{"size", "mediaType"?, "urls"?}, ...]` (foreign layers carry
    urls; a size over 8 GB is only declared)."""
    sizes, layers = body.get("layerSizes"), body.get("layers")
    if layers is None and isinstance(sizes, list):
        layers = [{"size": size} for size in sizes]
    if not isinstance(layers, list) or not layers:
        raise bad_request('Give "layerSizes": [bytes, ...] or "layers": [{"size", "mediaType"?, "urls"?}].')
    for layer in layers:
        size = layer.get("size") if isinstance(layer, dict) else None
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise bad_request("Each layer needs a positive integer 'size' (bytes).")
        urls = layer.get("urls")
        if urls is not None and not (isinstance(urls, list) and all(isinstance(u, str) for u in urls)):
            raise bad_request("A layer's 'urls' must be a list of strings.")
    return layers


def _media_type(body: dict[str, Any], choices: dict[str, str]) -> str:
    kind = str(body.get("mediaType") or "oci")
    if kind in choices:
        return choices[kind]
    if kind in choices.values():
        return kind
    raise bad_request(f"'mediaType' must be one of {', '.join(choices)} (or their media types).")


def image_from(label: str, body: dict[str, Any]) -> Manifest:
    platform = body.get("platform") or {}
    if not isinstance(platform, dict):
        raise bad_request('\'platform\' must be {"os", "architecture"}.')
    return image_manifest(
        label,
        layer_specs(body),
        media_type=_media_type(body, MEDIA_TYPES),
        architecture=str(platform.get("architecture") or body.get("architecture") or "amd64"),
        os=str(platform.get("os") or body.get("os") or "linux"),
    )


def push_image(registries: Registries, registry_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """{"repository", "tag", "layerSizes" | "layers", "mediaType"?: oci|docker, "platform"?}: an image whose
    manifest has these layers (one over 8 GB fails its export; foreign layers carry urls)."""
    repository, tag = _text(body, "repository"), _text(body, "tag")
    manifest = image_from(f"{repository}:{tag}", body)
    registries.add(registry_id, repository, tag, manifest.digest, manifest)
    return {
        "repository": repository,
        "tag": tag,
        "digest": manifest.digest,
        "mediaType": manifest.media_type,
        "size": manifest.image_size,
    }


def _index(registries: Registries, registry_id: str, body: dict[str, Any]) -> Response:
    """{"repository", "tag", "mediaType"?: oci|docker, "platforms": [{"os", "architecture", "layerSizes" |
    "layers"}, ...]}: each platform's image (untagged), then the index under the tag."""
    repository, tag = _text(body, "repository"), _text(body, "tag")
    platforms = body.get("platforms")
    if not isinstance(platforms, list) or not platforms or not all(isinstance(p, dict) for p in platforms):
        raise bad_request('\'platforms\' must list {"os", "architecture", "layerSizes" | "layers"}.')
    docker = _media_type(body, INDEX_MEDIA_TYPES) == DOCKER_LIST
    children = []
    for platform in platforms:
        spec = {**platform, "platform": platform, "mediaType": "docker" if docker else "oci"}
        label = f"{repository}:{tag}:{platform.get('os')}/{platform.get('architecture')}"
        child = image_from(label, spec)
        registries.add(registry_id, repository, None, child.digest, child)
        children.append(child)
    index = index_manifest(children, media_type=DOCKER_LIST if docker else OCI_INDEX)
    registries.add(registry_id, repository, tag, index.digest, index)
    described = [
        {"digest": c.digest, "os": c.os, "architecture": c.architecture, "size": c.image_size}
        for c in children
    ]
    return Response(
        201, {"repository": repository, "tag": tag, "digest": index.digest, "manifests": described}
    )


def _resolve(registries: Registries, registry_id: str, repository: str, reference: str) -> str:
    with registries.state.lock:
        repo = registries.content(registry_id).get(repository)
        if repo is None:
            raise bad_request(f"The registry has no repository '{repository}'.")
        digest = reference if reference.startswith("sha256:") else repo.tags.get(reference)
        if digest is None or digest not in repo.manifests:
            raise bad_request(f"The repository '{repository}' has no manifest '{reference}'.")
        return digest


def _attach(registries: Registries, registry_id: str, body: dict[str, Any]) -> Response:
    """{"repository", "subject": digest or tag, "artifactType", "annotations"?, "payload"?: text, "tag"?}:
    a referrer pushed as oras / notation / cosign push one (with the fallback tag when the registry lacks the
    referrers API)."""
    repository, artifact_type = _text(body, "repository"), _text(body, "artifactType")
    subject = _resolve(registries, registry_id, repository, _text(body, "subject"))
    annotations, payload, tag = body.get("annotations"), body.get("payload"), body.get("tag")
    if annotations is not None and not (
        isinstance(annotations, dict) and all(isinstance(v, str) for v in annotations.values())
    ):
        raise bad_request("'annotations' must map names to strings.")
    if payload is not None and not isinstance(payload, str):
        raise bad_request("'payload' must be text (the artifact's content).")
    if tag is not None and not isinstance(tag, str):
        raise bad_request("'tag' must be a string.")
    manifest = referrers.attach(
        registries,
        registry_id,
        repository,
        subject,
        artifact_type,
        annotations=annotations,
        payload=payload.encode("utf-8") if payload is not None else None,
        tag=tag,
    )
    return Response(
        201,
        {
            "repository": repository,
            "digest": manifest.digest,
            "subject": subject,
            "artifactType": artifact_type,
            "mediaType": manifest.media_type,
            "size": len(manifest.data),
        },
    )


def _referrer_list(registries: Registries, registry_id: str, body: dict[str, Any]) -> Response:
    found = []
    with registries.state.lock:
        for repository, repo in sorted(registries.content(registry_id).items()):
            for digest in sorted(repo.manifests):
                document = registries.store.document(digest)
                if document is not None and document.subject:
                    found.append(
                        {
                            "repository": repository,
                            "digest": digest,
                            "subject": document.subject,
                            "artifactType": document.artifact_type,
                            "annotations": document.annotations,
                        }
                    )
    return Response(200, {"referrers": found})


def _api_switch(registries: Registries, registry_id: str, body: dict[str, Any]) -> Response:
    """{"enabled": bool, "writeFallbackTags"?: bool (default true), "pageSize"?: int | null}."""
    settings = registries.store.settings_of(ids.key(registry_id))
    written: list[str] = []
    if "pageSize" in body:
        size = body["pageSize"]
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise bad_request("'pageSize' must be a positive integer or null (one page).")
        settings.referrers_page_size = size
    if "enabled" in body:
        enabled, write = body["enabled"], body.get("writeFallbackTags", True)
        if not isinstance(enabled, bool) or not isinstance(write, bool):
            raise bad_request("'enabled' and 'writeFallbackTags' must be booleans.")
        written = referrers.set_api(registries, registry_id, enabled, write)
    return Response(200, {**settings.as_dict(), "fallbackTagsWritten": written})


def _api_settings(registries: Registries, registry_id: str, body: dict[str, Any]) -> Response:
    return Response(200, registries.store.settings_of(ids.key(registry_id)).as_dict())


def _throttle(registries: Registries, registry_id: str, body: dict[str, Any]) -> Response:
    """{"method"?: "GET" | "*", "path"?: regex on the path, "seconds"?: 5, "count"?: n}."""
    throttles = registries.store.throttles
    try:
        throttles.add_rule(ids.key(registry_id), body)
    except ValueError as exc:
        raise bad_request(str(exc)) from None
    return Response(201, throttles.describe(ids.key(registry_id)))


def _throttles(registries: Registries, registry_id: str, body: dict[str, Any]) -> Response:
    return Response(200, registries.store.throttles.describe(ids.key(registry_id)))


def _clear_throttles(registries: Registries, registry_id: str, body: dict[str, Any]) -> Response:
    registries.store.throttles.clear_rules(ids.key(registry_id))
    return Response(200, registries.store.throttles.describe(ids.key(registry_id)))


def _limits(registries: Registries, registry_id: str, body: dict[str, Any]) -> Response:
    try:
        limits = registries.store.throttles.set_limits(ids.key(registry_id), body)
    except ValueError as exc:
        raise bad_request(str(exc)) from None
    return Response(200, limits.as_dict())


def _limits_now(registries: Registries, registry_id: str, body: dict[str, Any]) -> Response:
    return Response(200, registries.store.throttles.limits(ids.key(registry_id)).as_dict())


def _delete(registries: Registries, registry_id: str, body: dict[str, Any]) -> Response:
    """{"repository", "digest" | "tag"}: delete the manifest (and its tags), as a client's DELETE does."""
    repository = _text(body, "repository")
    digest = _resolve(registries, registry_id, repository, str(body.get("digest") or body.get("tag") or ""))
    registries.delete_manifest(registry_id, repository, digest)
    return Response(200, {"repository": repository, "digest": digest, "deleted": True})


_ROUTES = {
    ("POST", "referrers"): _attach,
    ("GET", "referrers"): _referrer_list,
    ("POST", "referrers-api"): _api_switch,
    ("GET", "referrers-api"): _api_settings,
    ("POST", "throttle"): _throttle,
    ("GET", "throttle"): _throttles,
    ("DELETE", "throttle"): _clear_throttles,
    ("POST", "limits"): _limits,
    ("GET", "limits"): _limits_now,
    ("POST", "index"): _index,
    ("POST", "delete"): _delete,
}
