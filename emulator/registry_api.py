"""The container registry data plane, one HTTPS port per registry (`https://127.0.0.1:{port}`), as
`azure-containerregistry` (ContainerRegistryClient) and Docker-style clients use it:

- the token challenge: a request without a valid ACR access token gets 401 with
  `WWW-Authenticate: Bearer realm="https://{host}/oauth2/token",service="{host}",scope="..."`;
- `POST /oauth2/exchange` (an Entra token for an ACR refresh token), `POST /oauth2/token` (a refresh token
  for an access token of the requested scope);
- `GET /acr/v1/_catalog`, `GET /acr/v1/{repo}`, `GET /acr/v1/{repo}/_tags[/{tag}]`,
  `GET /acr/v1/{repo}/_manifests[/{digest}]` (paging: `n`, `last`, `orderby`, a `Link: <...>; rel="next"`);
- `GET|HEAD /v2/`, `GET /v2/_catalog`, `GET /v2/{repo}/tags/list`, `GET|HEAD /v2/{repo}/manifests/{ref}`
  (the manifest's exact bytes, `Docker-Content-Digest` = their sha256).

Errors have ACR's shape `{"errors": [{"code", "message", "detail"}]}`. Writes are not emulated (405).
The admin routes of `/_emulator/registries/{name}/...` that belong to the data plane are here too.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qsl, quote, urlencode

from emulator import ids
from emulator.acr import REGISTRIES, Registries, login_server
from emulator.arm_errors import ApiError, bad_request
from emulator.clock import Clock, iso
from emulator.registry_content import ACCESS_STATUSES, Manifest, new_manifest
from emulator.resources import ResourceManager
from emulator.server import HttpsServer, Request, Response
from emulator.store import Config, State
from emulator.tls import Certificates


class RegistryHost(Protocol):
    """What the data plane uses of the emulator (runtime.Emulator is one; this module never imports it)."""

    state: State
    config: Config
    clock: Clock
    resources: ResourceManager
    registries: Registries
    certificates: Certificates


DEFAULT_PAGE_SIZE = 100  # the emulator's page when a request has no `n` (not checked against ACR)
REFRESH_TOKEN_SECONDS = 3 * 3600
ACCESS_TOKEN_SECONDS = 75 * 60
READ_ACTIONS = ("pull", "metadata_read", "content_read")  # what AcrPull grants on a repository
AUTH_HELP = "visit https://aka.ms/acr/authorization for more information."
COMMON_HEADERS = {"Docker-Distribution-Api-Version": "registry/2.0"}
ORDERS = ("timedesc", "timeasc")
ADMIN_ROUTES = ("retag", "manifests", "access", "import-failures")
IMPORT_FAILURE = "the artifact could not be imported (a failure set through the emulator's admin API)"


def _error(
    status: int,
    code: str,
    message: str,
    detail: Any = None,
    headers: dict[str, str] | None = None,
) -> Response:
    entry: dict[str, Any] = {"code": code, "message": message}
    if detail is not None:
        entry["detail"] = detail
    return Response(status, {"errors": [entry]}, {**COMMON_HEADERS, **(headers or {})})


@dataclass(frozen=True)
class Scope:
    """A token scope `type:name:actions` (`repository:samples/hello:pull`, `registry:catalog:*`)."""

    type: str
    name: str
    actions: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Scope | None:
        parts = text.split(":")
        if len(parts) < 3 or not parts[0] or not parts[-1]:
            return None
        return cls(parts[0], ":".join(parts[1:-1]), tuple(a for a in parts[-1].split(",") if a))

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"

    def detail(self) -> list[dict[str, str]]:
        return [{"Type": self.type, "Name": self.name, "Action": a} for a in self.actions]


CATALOG = Scope("registry", "catalog", ("*",))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    text = text.replace("-", "+").replace("_", "/")
    return base64.b64decode(text + "=" * (-len(text) % 4))


def entra_principal(token: str) -> tuple[str | None, str | None]:
    """(object or application id, tenant) of an Entra token that is a JWT; (None, None) for an opaque
    token (the emulator's /msi/token hands out opaque ones). Signatures are not checked."""
    parts = token.split(".")
    if len(parts) != 3:
        return None, None
    try:
        claims = json.loads(_unb64(parts[1]))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None, None
    if not isinstance(claims, dict):
        return None, None
    principal = claims.get("oid") or claims.get("appid") or claims.get("azp") or claims.get("sub")
    return (str(principal) if principal else None), (str(claims["tid"]) if claims.get("tid") else None)


class Tokens:
    """ACR refresh and access tokens: JWT-shaped (header.payload.signature, HMAC-SHA256 with a key of this
    emulator), so the SDK can read `exp` from the payload (it decodes it with plain base64)."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def issue(self, claims: dict[str, Any]) -> str:
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "acr-emulator"}).encode())
        text = json.dumps(claims, separators=(",", ":"), sort_keys=True)
        text += " " * (-len(text.encode("utf-8")) % 3)  # no base64 padding: the SDK's decoder pads oddly
        payload = _b64(text.encode("utf-8"))
        signature = hmac.new(self._key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{_b64(signature)}"

    def verify(self, token: str, kind: str, audience: str) -> dict[str, Any] | None:
        parts = token.split(".")
        if len(parts) != 3:
            return None
        try:
            expected = hmac.new(self._key, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
            if not hmac.compare_digest(expected, _unb64(parts[2])):
                return None
            claims = json.loads(_unb64(parts[1]))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            return None
        if (
            not isinstance(claims, dict)
            or claims.get("kind") != kind
            or claims.get("aud") != audience
            or float(claims.get("exp") or 0) < time.time()
        ):
            return None
        return claims


class RegistryDataPlane:
    """The data-plane servers (one per registry name) and their routes."""

    def __init__(self, emulator: RegistryHost) -> None:
        self.emulator = emulator
        self.tokens = Tokens()
        self._lock = threading.Lock()
        self._servers: dict[str, HttpsServer] = {}  # registry name (lower) -> its server
        self._names: dict[int, str] = {}  # port -> registry name (lower)

    # --- ports

    def listen(self, name: str) -> int:
        """Open (or reuse) the HTTPS port of the registry named `name`; returns the port."""
        with self._lock:
            server = self._servers.get(name.lower())
            if server is None:
                server = HttpsServer(self.emulator.certificates.server_context(), self.dispatch, 0)
                server.start()
                self._servers[name.lower()] = server
                self._names[server.port] = name.lower()
            return server.port

    def endpoint(self, name: str) -> str:
        """`https://127.0.0.1:{port}` of an existing registry; 404 RegistryNotFound for an unknown name."""
        if self._registry_id(name) is None:
            raise ApiError(404, "RegistryNotFound", f"No registry named '{name}' exists in the emulator.")
        return f"https://127.0.0.1:{self.listen(name)}"

    def endpoints(self) -> dict[str, str]:
        """{registry name: endpoint} of every registry the emulator holds."""
        names = sorted({r.body["name"] for r in self.emulator.resources.by_type(REGISTRIES)}, key=str.lower)
        return {name: f"https://127.0.0.1:{self.listen(name)}" for name in names}

    def stop(self) -> None:
        with self._lock:
            servers = list(self._servers.values())
            self._servers.clear()
            self._names.clear()
        for server in servers:
            server.stop()

    def _registry_id(self, name: str) -> str | None:
        for resource in self.emulator.resources.by_type(REGISTRIES):
            if resource.body["name"].lower() == name.lower():
                return resource.id
        return None

    # --- requests

    def dispatch(self, request: Request) -> Response:
        with self._lock:
            name = self._names.get(request.port)
        registry_id = self._registry_id(name) if name else None
        if name is None or registry_id is None:
            return _error(404, "NOT_FOUND", f"The registry '{name}' does not exist in the emulator.")
        host = request.headers.get("host") or f"127.0.0.1:{request.port}"
        context = _Context(self, registry_id, name, host, request)
        return context.handle()


class _Context:
    """One request to one registry."""

    def __init__(
        self, plane: RegistryDataPlane, registry_id: str, name: str, host: str, request: Request
    ) -> None:
        self.plane = plane
        self.emulator = plane.emulator
        self.store = plane.emulator.registries.store
        self.registry_id = registry_id
        self.key = ids.key(registry_id)
        self.server = login_server(name)  # what the body's "registry" and the tokens' audience name
        self.host = host
        self.request = request

    # --- routing

    def handle(self) -> Response:
        request = self.request
        parts = [p for p in request.path.split("/") if p]
        if parts[:1] == ["oauth2"]:
            if request.method != "POST" or parts[1:] not in (["exchange"], ["token"]):
                return _error(405, "UNSUPPORTED", f"{request.method} {request.path} is not emulated.")
            return self._exchange() if parts[1] == "exchange" else self._token()
        route = self._route(parts)
        if route is None:
            return _error(404, "NOT_FOUND", f"No route {request.method} {request.path}.")
        scope, action = route
        denied = self._authorize(scope)
        if denied is not None:
            return denied
        if request.method not in ("GET", "HEAD"):
            return _error(405, "UNSUPPORTED", f"{request.method} is not emulated by this registry.")
        return action()

    def _route(self, parts: list[str]) -> tuple[Scope | None, Any] | None:
        if parts[:2] == ["acr", "v1"]:
            rest = parts[2:]
            if rest == ["_catalog"]:
                return CATALOG, lambda: self._catalog(acr=True)
            marker = next((i for i, s in enumerate(rest) if i > 0 and s in ("_tags", "_manifests")), None)
            if marker is not None:
                repository, reference = "/".join(rest[:marker]), "/".join(rest[marker + 1 :]) or None
                scope = Scope("repository", repository, ("metadata_read",))
                if rest[marker] == "_tags":
                    return scope, lambda: self._tags(repository, reference)
                return scope, lambda: self._manifests(repository, reference)
            if rest:
                repository = "/".join(rest)
                return Scope("repository", repository, ("metadata_read",)), lambda: self._repository(
                    repository
                )
            return None
        if parts[:1] == ["v2"]:
            rest = parts[1:]
            if not rest:
                return None, lambda: Response(200, {}, dict(COMMON_HEADERS))
            if rest == ["_catalog"]:
                return CATALOG, lambda: self._catalog(acr=False)
            if len(rest) >= 3 and rest[-2] == "manifests":
                repository, reference = "/".join(rest[:-2]), rest[-1]
                return Scope("repository", repository, ("pull",)), lambda: self._manifest_document(
                    repository, reference
                )
            if len(rest) >= 3 and rest[-2:] == ["tags", "list"]:
                repository = "/".join(rest[:-2])
                return Scope("repository", repository, ("pull",)), lambda: self._tag_names(repository)
        return None

    # --- authentication and authorization

    def _challenge(self, scope: Scope | None) -> dict[str, str]:
        value = f'Bearer realm="https://{self.host}/oauth2/token",service="{self.host}"'
        if scope is not None:
            value += f',scope="{scope}"'
        return {"WWW-Authenticate": value}

    def _unauthorized(self, scope: Scope | None, message: str = "authentication required") -> Response:
        return _error(
            401,
            "UNAUTHORIZED",
            f"{message}, {AUTH_HELP}",
            scope.detail() if scope else None,
            self._challenge(scope),
        )

    def _authorize(self, scope: Scope | None) -> Response | None:
        authorization = self.request.headers.get("authorization", "")
        if not authorization.lower().startswith("bearer ") or not authorization[7:].strip():
            return self._unauthorized(scope)
        claims = self.plane.tokens.verify(authorization[7:].strip(), "access", self.server)
        if claims is None:
            return self._unauthorized(scope)
        status = self.store.denial(self.key, claims.get("sub"))
        if status == 403:
            return _error(
                403,
                "DENIED",
                "requested access to the resource is denied",
                scope.detail() if scope else None,
            )
        if status is not None or (scope is not None and not _covers(claims.get("access") or [], scope)):
            return self._unauthorized(scope)
        return None

    def _form(self) -> dict[str, str]:
        try:
            return dict(parse_qsl(self.request.body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            return {}

    def _service_matches(self, service: str) -> bool:
        port = self.request.port
        aliases = {self.host, f"127.0.0.1:{port}", f"localhost:{port}", self.server}
        return service.lower() in {a.lower() for a in aliases}

    def _exchange(self) -> Response:
        form = self._form()
        grant = form.get("grant_type", "")
        if grant not in ("access_token", "access_token_refresh_token"):
            return _error(400, "UNSUPPORTED", f"The grant_type '{grant}' is not supported by the emulator.")
        entra = form.get("access_token", "")
        if not entra:
            return _error(400, "UNAUTHORIZED", "The access_token (an Entra token) is required.")
        if not self._service_matches(form.get("service", "")):
            return _error(
                401, "UNAUTHORIZED", f"The service '{form.get('service', '')}' is not this registry."
            )
        principal, tenant = entra_principal(entra)
        now = int(time.time())
        claims = {
            "kind": "refresh",
            "iss": "Azure Container Registry (emulator)",
            "aud": self.server,
            "sub": principal or "",
            "tenant": form.get("tenant") or tenant or self.emulator.config.tenant_id,
            "iat": now,
            "nbf": now,
            "exp": now + REFRESH_TOKEN_SECONDS,
            "jti": uuid.uuid4().hex,
        }
        return Response(200, {"refresh_token": self.plane.tokens.issue(claims)}, dict(COMMON_HEADERS))

    def _token(self) -> Response:
        form = self._form()
        if form.get("grant_type") != "refresh_token":
            return _error(
                400, "UNSUPPORTED", f"The grant_type '{form.get('grant_type', '')}' is not supported."
            )
        if not self._service_matches(form.get("service", "")):
            return _error(
                401, "UNAUTHORIZED", f"The service '{form.get('service', '')}' is not this registry."
            )
        refresh = self.plane.tokens.verify(form.get("refresh_token", ""), "refresh", self.server)
        if refresh is None:
            return _error(401, "UNAUTHORIZED", "The refresh token is invalid or expired.")
        denied = self.store.denial(self.key, refresh.get("sub")) is not None
        access = []
        for text in form.get("scope", "").split():
            scope = Scope.parse(text)
            if scope is None or denied:
                continue  # the real service grants nothing it cannot grant: an empty `access` claim
            granted = [a for a in scope.actions if a in READ_ACTIONS or scope == CATALOG]
            if granted:
                access.append({"type": scope.type, "name": scope.name, "actions": granted})
        now = int(time.time())
        claims = {
            "kind": "access",
            "iss": "Azure Container Registry (emulator)",
            "aud": self.server,
            "sub": refresh.get("sub", ""),
            "tenant": refresh.get("tenant"),
            "iat": now,
            "nbf": now,
            "exp": now + ACCESS_TOKEN_SECONDS,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        return Response(200, {"access_token": self.plane.tokens.issue(claims)}, dict(COMMON_HEADERS))

    # --- content (a consistent copy taken under the state lock)

    def _snapshot(self, repository: str) -> _Repo | None:
        registries = self.emulator.registries
        with self.emulator.state.lock:
            repo = registries.content(self.registry_id).get(repository)
            if repo is None:
                return None
            now = self.emulator.clock.now()
            tags = {
                tag: (digest, self.store.tag_time(self.key, repository, tag, now))
                for tag, digest in repo.tags.items()
            }
            manifests = {
                digest: (
                    self.store.document(digest),
                    self.store.manifest_time(self.key, repository, digest, now),
                )
                for digest in repo.manifests
            }
        return _Repo(repository, tags, manifests)

    def _repository_names(self) -> list[str]:
        with self.emulator.state.lock:
            return sorted(self.emulator.registries.content(self.registry_id))

    def _not_found_repository(self, repository: str) -> Response:
        return _error(404, "NAME_UNKNOWN", "repository name not known to registry", {"name": repository})

    # --- routes

    def _page_size(self) -> int | Response:
        raw = self.request.query.get("n")
        if raw in (None, ""):
            return DEFAULT_PAGE_SIZE
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if value < 1:
            return _error(400, "PAGINATION_NUMBER_INVALID", "invalid number of results requested", {"n": raw})
        return value

    def _page(
        self, path: str, names: list[str], ordered_by_name: bool, extra: dict[str, str], render: Any = None
    ) -> tuple[list[Any], dict[str, str]] | Response:
        """The page after `last` of `names` (in their order), each rendered; the Link header when more
        follow. An unknown `last` continues after it by name in name order, from the start otherwise."""
        size = self._page_size()
        if isinstance(size, Response):
            return size
        last = self.request.query.get("last") or None
        start = 0
        if last is not None:
            if last in names:
                start = names.index(last) + 1
            elif ordered_by_name:
                start = next((i for i, name in enumerate(names) if name > last), len(names))
        chosen = names[start : start + size]
        headers = dict(COMMON_HEADERS)
        if start + size < len(names) and chosen:
            query = {"last": chosen[-1], "n": str(size), **extra}
            headers["Link"] = f'<{path}?{urlencode(query, quote_via=quote)}>; rel="next"'
        return [render(name) if render else name for name in chosen], headers

    def _catalog(self, acr: bool) -> Response:
        names = self._repository_names()
        path = "/acr/v1/_catalog" if acr else "/v2/_catalog"
        paged = self._page(path, names, True, {})
        if isinstance(paged, Response):
            return paged
        page, headers = paged
        return Response(200, {"repositories": page}, headers)

    def _repository(self, repository: str) -> Response:
        repo = self._snapshot(repository)
        if repo is None:
            return self._not_found_repository(repository)
        times = [t for _, t in repo.manifests.values()] + [t for _, t in repo.tags.values()]
        body = {
            "registry": self.server,
            "imageName": repository,
            "createdTime": iso(min(t.created for t in times)) if times else None,
            "lastUpdateTime": iso(max(t.updated for t in times)) if times else None,
            "manifestCount": len(repo.manifests),
            "tagCount": len(repo.tags),
            "changeableAttributes": _changeable(),
        }
        return Response(200, body, dict(COMMON_HEADERS))

    def _order(self) -> str | Response | None:
        order = self.request.query.get("orderby") or None
        if order is not None and order not in ORDERS:
            return _error(400, "UNSUPPORTED", f"orderby must be one of {', '.join(ORDERS)}.")
        return order

    def _tags(self, repository: str, tag: str | None) -> Response:
        repo = self._snapshot(repository)
        if repo is None:
            return self._not_found_repository(repository)
        if tag is not None:
            if tag not in repo.tags:
                return _error(404, "TAG_UNKNOWN", "the specified tag does not exist", {"tag": tag})
            body = {"registry": self.server, "imageName": repository, "tag": repo.tag_body(tag)}
            return Response(200, body, dict(COMMON_HEADERS))
        order = self._order()
        if isinstance(order, Response):
            return order
        wanted = self.request.query.get("digest") or None
        names = [t for t in repo.tags if wanted is None or repo.tags[t][0] == wanted]
        names = _ordered(names, lambda t: repo.tags[t][1].updated, order)
        extra = {"orderby": order} if order else {}
        if wanted:
            extra["digest"] = wanted
        paged = self._page(f"/acr/v1/{quote(repository)}/_tags", names, order is None, extra, repo.tag_body)
        if isinstance(paged, Response):
            return paged
        page, headers = paged
        return Response(200, {"registry": self.server, "imageName": repository, "tags": page}, headers)

    def _manifests(self, repository: str, digest: str | None) -> Response:
        repo = self._snapshot(repository)
        if repo is None:
            return self._not_found_repository(repository)
        if digest is not None:
            if digest not in repo.manifests:
                return _error(404, "MANIFEST_UNKNOWN", "manifest unknown", {"digest": digest})
            body = {"registry": self.server, "imageName": repository, "manifest": repo.manifest_body(digest)}
            return Response(200, body, dict(COMMON_HEADERS))
        order = self._order()
        if isinstance(order, Response):
            return order
        digests = _ordered(list(repo.manifests), lambda d: repo.manifests[d][1].updated, order)
        paged = self._page(
            f"/acr/v1/{quote(repository)}/_manifests",
            digests,
            order is None,
            {"orderby": order} if order else {},
            repo.manifest_body,
        )
        if isinstance(paged, Response):
            return paged
        page, headers = paged
        return Response(200, {"registry": self.server, "imageName": repository, "manifests": page}, headers)

    def _tag_names(self, repository: str) -> Response:
        repo = self._snapshot(repository)
        if repo is None:
            return self._not_found_repository(repository)
        names = sorted(repo.tags)
        paged = self._page(f"/v2/{quote(repository)}/tags/list", names, True, {})
        if isinstance(paged, Response):
            return paged
        page, headers = paged
        return Response(200, {"name": repository, "tags": page}, headers)

    def _manifest_document(self, repository: str, reference: str) -> Response:
        repo = self._snapshot(repository)
        if repo is None:
            return self._not_found_repository(repository)
        digest = reference if reference.startswith("sha256:") else (repo.tags.get(reference) or (None,))[0]
        if digest is None or digest not in repo.manifests:
            return _error(
                404,
                "MANIFEST_UNKNOWN",
                "manifest unknown",
                {"Tag" if digest is None else "digest": reference},
            )
        manifest = repo.manifests[digest][0]
        if manifest is None:
            return _error(
                404,
                "MANIFEST_UNKNOWN",
                f"manifest unknown: the emulator holds no document for {digest} (a digest set through its "
                "admin API)",
                {"digest": digest},
            )
        headers = {
            **COMMON_HEADERS,
            "Content-Type": manifest.media_type,
            "Docker-Content-Digest": manifest.digest,
            "ETag": f'"{manifest.digest}"',
        }
        return Response(200, manifest.data, headers)


@dataclass
class _Repo:
    name: str
    tags: dict[str, tuple[str, Any]]  # tag -> (digest, Times)
    manifests: dict[str, tuple[Manifest | None, Any]]  # digest -> (document or None, Times)

    def tag_body(self, tag: str) -> dict[str, Any]:
        digest, times = self.tags[tag]
        return {
            "name": tag,
            "digest": digest,
            "createdTime": iso(times.created),
            "lastUpdateTime": iso(times.updated),
            "signed": False,
            "changeableAttributes": _changeable(),
        }

    def manifest_body(self, digest: str) -> dict[str, Any]:
        manifest, times = self.manifests[digest]
        body: dict[str, Any] = {
            "digest": digest,
            "imageSize": manifest.image_size if manifest else 0,
            "createdTime": iso(times.created),
            "lastUpdateTime": iso(times.updated),
        }
        if manifest is not None:
            body["architecture"] = manifest.architecture
            body["os"] = manifest.os
            body["mediaType"] = manifest.media_type
            body["configMediaType"] = "application/vnd.oci.image.config.v1+json"
        body["tags"] = sorted(t for t, (d, _) in self.tags.items() if d == digest)
        body["changeableAttributes"] = {**_changeable(), "quarantineState": "Passed"}
        return body


def _changeable() -> dict[str, bool]:
    return {"deleteEnabled": True, "writeEnabled": True, "readEnabled": True, "listEnabled": True}


def _covers(access: list[dict[str, Any]], scope: Scope) -> bool:
    for entry in access:
        if entry.get("type") == scope.type and entry.get("name") == scope.name:
            actions = entry.get("actions") or []
            if "*" in actions or all(a in actions for a in scope.actions):
                return True
    return False


def _ordered(names: list[str], updated: Any, order: str | None) -> list[str]:
    names = sorted(names)
    if order == "timedesc":
        return sorted(names, key=updated, reverse=True)
    if order == "timeasc":
        return sorted(names, key=updated)
    return names


# --- admin routes: /_emulator/registries/{name}/{retag | manifests | access | import-failures}


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
